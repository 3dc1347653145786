"""Avro single-object encoding for every record, with the checks that keep poison out.

Wire format: `C3 01`, the schema's 8-byte CRC-64-AVRO fingerprint (little-endian), the Avro
binary body; the fingerprint also rides in the `streamops-fingerprint` header. Decoding refuses,
with a `PoisonMessage` whose reason is one of a bounded set: data that is neither our framing nor
(where a topic allows it) a JSON object, unknown fingerprints, a record other than the one the
topic carries, messages over the per-record size limit, size bombs (declared lengths beyond the
data, or too many items), truncated bodies, trailing bytes, and NaN/Inf where the contract
forbids them. Refusals happen before the record costs memory.

>>> data = encode("Actual", {"association_id": "a", "deployment": "d", "label": "1",
...                          "actual_time": 1})
>>> decode(data, expected="Actual")[1]["label"]
'1'
"""

from __future__ import annotations

import functools
import io
import math
from collections.abc import Callable, Mapping
from typing import Any

import fastavro

from services.common.avro_guard import MAX_ITEMS, Malformed, SizeBomb, Truncated, walk
from services.common.errors import PoisonMessage, Reason
from services.common.hot_codecs import FeatureEventReader, PredictionReader, PredictionWriter
from services.common.json_input import FIELDS as JSON_RECORDS
from services.common.json_input import from_json
from services.common.schemas import SchemaSet, default_schemas

MAGIC = b"\xc3\x01"
HEADER = "streamops-fingerprint"
KIB = 1024
LIMITS = {  # largest message we accept per record type
    "FeatureEvent": 64 * KIB,
    "Actual": 16 * KIB,
    "Prediction": 64 * KIB,
    "ModelPublished": 32 * KIB * KIB,
    "Deployment": 1024 * KIB,
    "DriftReport": 1024 * KIB,
    "ThresholdBreach": 64 * KIB,
    "RetrainRequest": 64 * KIB,
    "RetrainOutcome": 64 * KIB,
    "GovernanceEvent": 1024 * KIB,
    "DeadLetter": 33 * KIB * KIB,
}
# Where a topic accepts JSON, text that starts like a JSON value is parsed as JSON, so that a
# typo is reported as invalid JSON rather than as "not Avro".
_JSON_STARTS = frozenset(b'{["-0123456789tfn')
WALK_ABOVE = 4 * KIB  # bigger bodies are walked before decoding; smaller ones after a failure


DEFAULT_LIMIT = 64 * KIB  # for a record type missing from the limits
Decoder = Callable[[bytes], tuple[str, dict[str, Any]]]


class Serde:
    """Encoder and guarded decoder over one schema set with per-record size limits."""

    def __init__(
        self,
        schemas: SchemaSet,
        limits: Mapping[str, int] | None = None,
        max_items: int = MAX_ITEMS,
    ) -> None:
        self.schemas = schemas
        self.limits = dict(LIMITS if limits is None else limits)
        self.max_items = max_items
        # Hand-written paths for the per-event records (services.common.hot_codecs); whatever
        # they do not take goes through fastavro and the guards below.
        self._features = FeatureEventReader()
        self._readers = {"FeatureEvent": self._features.read, "Prediction": PredictionReader().read}
        self._prediction_writer = PredictionWriter()

    def encode(self, name: str, record: Mapping[str, Any]) -> bytes:
        """Single-object encoding of `record` as the named schema."""
        if name == "Prediction":
            body = self._prediction_writer.write(record)
            if body is not None:
                return MAGIC + self.schemas.fingerprint(name) + body
        buf = io.BytesIO()
        buf.write(MAGIC)
        buf.write(self.schemas.fingerprint(name))
        fastavro.schemaless_writer(buf, self.schemas.parsed(name), record)
        return buf.getvalue()

    def header(self, name: str) -> bytes:
        """The bytes every single-object message of the named record starts with."""
        return MAGIC + self.schemas.fingerprint(name)

    def limit(self, name: str) -> int:
        """The largest message of the named record accepted."""
        return self.limits.get(name, DEFAULT_LIMIT)

    def fingerprint_header(self, name: str) -> tuple[str, bytes]:
        """The (header name, fingerprint) pair to send with a record."""
        return HEADER, self.schemas.fingerprint(name)

    def canonical_bytes(
        self, name: str, record: Mapping[str, Any], without: tuple[str, ...] = ()
    ) -> bytes:
        """Schemaless encoding with every map's keys sorted: the bytes a signature covers.
        `without`: fields of a top-level record left out (the signature's own fields)."""
        schema = self.schemas.without(name, without) if without else self.schemas.nested(name)
        buf = io.BytesIO()
        fastavro.schemaless_writer(buf, schema, _sorted_maps(record))
        return buf.getvalue()

    def decode(
        self, data: bytes, *, expected: str | None = None, allow_json: bool = False
    ) -> tuple[str, dict[str, Any]]:
        """(record name, record) from single-object bytes, or JSON where allowed."""
        if data[:2] != MAGIC:
            head = bytes(data[:64]).lstrip()
            if allow_json and expected in JSON_RECORDS and head and head[0] in _JSON_STARTS:
                self._check_size(expected, len(data))
                record = from_json(expected, bytes(data))
                validate(expected, record)
                return expected, record
            raise PoisonMessage(
                Reason.NOT_AVRO, f"no single-object marker ({bytes(data[:2]).hex() or 'empty'})"
            )
        if len(data) < 10:
            raise PoisonMessage(Reason.TRUNCATED, f"{len(data)} bytes is shorter than the header")
        fp = bytes(data[2:10])
        name = self.schemas.name_for(fp)
        if name is None:
            raise PoisonMessage(Reason.UNKNOWN_FINGERPRINT, f"fingerprint {fp.hex()}")
        if expected is not None and name != expected:
            raise PoisonMessage(Reason.WRONG_TYPE, f"a {name} record where {expected} is expected")
        self._check_size(name, len(data))
        record = self._body(name, bytes(data[10:]), self.schemas.earlier_writer(fp))
        validate(name, record)
        return name, record

    def decoder_for(self, expected: str, *, allow_json: bool = False) -> Decoder:
        """``decode`` for one expected record, with the common case first.

        Our header for ``expected``, a small body the hand-written reader takes: one prefix
        check, the reader and the record's checks. Anything else goes through ``decode``, so
        what is accepted and refused, and why, is the same.
        """
        slow = functools.partial(self.decode, expected=expected, allow_json=allow_json)
        reader = self._readers.get(expected)
        if reader is None:
            return slow
        header = self.header(expected)
        largest = min(self.limit(expected), len(header) + WALK_ABOVE)
        check = _CHECKS[expected]

        def decode(data: bytes) -> tuple[str, dict[str, Any]]:
            if len(data) <= largest and data.startswith(header):
                record = reader(data[10:])
                if record is not None:
                    check(record)
                    return expected, record
            return slow(data)

        return decode

    def _check_size(self, name: str, size: int) -> None:
        limit = self.limit(name)
        if size > limit:
            raise PoisonMessage(Reason.OVERSIZE, f"{name} of {size} bytes exceeds {limit}")

    def _body(self, name: str, body: bytes, earlier: Any | None = None) -> dict[str, Any]:
        """The record in `body`, written with the current schema or, given, an earlier one."""
        fast = self._readers.get(name) if earlier is None else None
        if fast is not None and len(body) <= WALK_ABOVE:
            record = fast(body)
            if record is not None:
                return record
        reader = self.schemas.parsed(name)
        parsed = reader if earlier is None else earlier  # the shape the bytes were written in
        # Walking costs about as much as decoding, so small bodies skip it: their declared
        # lengths cannot make fastavro allocate more than the bytes present (it reads item by
        # item and fails at the end of the data), and a failure is walked to name the cause.
        if len(body) > WALK_ABOVE:
            self._guard(name, body, parsed)
        stream = io.BytesIO(body)
        try:
            record = fastavro.schemaless_reader(stream, parsed, None if earlier is None else reader)
        except (
            EOFError,
            ValueError,
            IndexError,
            TypeError,
            OverflowError,
            UnicodeDecodeError,
            MemoryError,
        ) as exc:
            self._guard(name, body, parsed)  # names a bomb, a cut or a malformed body
            # The walker found the shape sound, so the content is wrong (e.g. invalid UTF-8).
            detail = f"{name} body unreadable: {exc!r}"[:300]
            short = isinstance(exc, EOFError)
            raise PoisonMessage(Reason.TRUNCATED if short else Reason.WRONG_TYPE, detail) from None
        if stream.tell() != len(body):
            extra = len(body) - stream.tell()
            raise PoisonMessage(Reason.TRAILING_BYTES, f"{extra} bytes after the {name} record")
        if name == "FeatureEvent" and earlier is None:
            self._features.learn(record)  # the next event of this shape takes the fast path
        return record

    def _guard(self, name: str, body: bytes, parsed: Any) -> None:
        try:
            walk(body, parsed, self.max_items, self.limits.get(name, DEFAULT_LIMIT))
        except SizeBomb as exc:
            raise PoisonMessage(Reason.OVERSIZE, str(exc)) from None
        except Truncated as exc:
            raise PoisonMessage(Reason.TRUNCATED, str(exc)) from None
        except Malformed as exc:
            raise PoisonMessage(Reason.WRONG_TYPE, str(exc)) from None


def _sorted_maps(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _sorted_maps(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [_sorted_maps(v) for v in value]
    return value


def _finite(value: Any, what: str) -> None:
    if isinstance(value, float) and not math.isfinite(value):
        raise PoisonMessage(Reason.NON_FINITE, f"{what} is {value}")


def _check_feature_event(record: Mapping[str, Any]) -> None:
    if not record["association_id"]:
        raise PoisonMessage(Reason.WRONG_TYPE, "empty association_id")
    for key, value in record["features"].items():
        if value.__class__ is float and not math.isfinite(value):
            raise PoisonMessage(Reason.NON_FINITE, f"feature {key!r} is {value}")


def _check_actual(record: Mapping[str, Any]) -> None:
    _finite(record["label"], "label")


def _check_prediction(record: Mapping[str, Any]) -> None:
    _finite(record["prediction"], "prediction")
    for key, value in record["probabilities"].items():
        if not math.isfinite(value):
            raise PoisonMessage(Reason.NON_FINITE, f"probability of {key!r} is {value}")


_CHECKS = {
    "FeatureEvent": _check_feature_event,
    "Actual": _check_actual,
    "Prediction": _check_prediction,
}


def validate(name: str, record: Mapping[str, Any]) -> None:
    """Semantic checks the schema cannot express (finite numbers, non-empty ids)."""
    check = _CHECKS.get(name)
    if check is not None:
        check(record)


@functools.cache
def default_serde() -> Serde:
    """The process-wide serde over the project's schemas and default limits."""
    return Serde(default_schemas())


def encode(name: str, record: Mapping[str, Any]) -> bytes:
    """Single-object encoding of `record` with the default serde."""
    return default_serde().encode(name, record)


def decode(
    data: bytes, *, expected: str | None = None, allow_json: bool = False
) -> tuple[str, dict[str, Any]]:
    """(record name, record) with the default serde; raises PoisonMessage."""
    return default_serde().decode(data, expected=expected, allow_json=allow_json)


def fingerprint_header(name: str) -> tuple[str, bytes]:
    """The (header name, fingerprint) pair to send with a record."""
    return default_serde().fingerprint_header(name)


def canonical_bytes(name: str, record: Mapping[str, Any], without: tuple[str, ...] = ()) -> bytes:
    """Schemaless encoding with sorted map keys (what signatures cover), default serde."""
    return default_serde().canonical_bytes(name, record, without)
