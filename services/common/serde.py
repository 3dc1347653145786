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

import io
import math
from collections.abc import Mapping
from typing import Any

import fastavro

from services.common.avro_guard import SizeBomb, Truncated, walk
from services.common.errors import PoisonMessage, Reason
from services.common.json_input import from_json
from services.common.schemas import default_schemas

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
    "GovernanceEvent": 1024 * KIB,
    "DeadLetter": 33 * KIB * KIB,
}
WALK_ABOVE = 4 * KIB  # bigger bodies are walked before decoding; smaller ones after a failure


def encode(name: str, record: Mapping[str, Any]) -> bytes:
    """Single-object encoding of `record` as the named schema."""
    schemas = default_schemas()
    buf = io.BytesIO()
    buf.write(MAGIC)
    buf.write(schemas.fingerprint(name))
    fastavro.schemaless_writer(buf, schemas.parsed(name), record)
    return buf.getvalue()


def fingerprint_header(name: str) -> tuple[str, bytes]:
    """The (header name, fingerprint) pair to send with a record."""
    return HEADER, default_schemas().fingerprint(name)


def _sorted_maps(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _sorted_maps(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [_sorted_maps(v) for v in value]
    return value


def canonical_bytes(name: str, record: Mapping[str, Any]) -> bytes:
    """Schemaless encoding with every map's keys sorted: the bytes a signature covers."""
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, default_schemas().nested(name), _sorted_maps(record))
    return buf.getvalue()


def _body(name: str, body: bytes) -> dict[str, Any]:
    parsed = default_schemas().parsed(name)
    if len(body) > WALK_ABOVE:
        _guard(body, parsed)
    stream = io.BytesIO(body)
    try:
        record = fastavro.schemaless_reader(stream, parsed)
    except (
        EOFError,
        ValueError,
        IndexError,
        TypeError,
        OverflowError,
        UnicodeDecodeError,
        MemoryError,
    ) as exc:
        _guard(body, parsed)  # a size bomb says so; otherwise the body is damaged
        raise PoisonMessage(Reason.TRUNCATED, f"{name} body unreadable: {exc!r}"[:300]) from None
    if stream.tell() != len(body):
        raise PoisonMessage(
            Reason.TRAILING_BYTES, f"{len(body) - stream.tell()} bytes after the {name} record"
        )
    return record


def _guard(body: bytes, parsed: Any) -> None:
    try:
        walk(body, parsed)
    except SizeBomb as exc:
        raise PoisonMessage(Reason.OVERSIZE, str(exc)) from None
    except Truncated as exc:
        raise PoisonMessage(Reason.TRUNCATED, str(exc)) from None


def decode(
    data: bytes, *, expected: str | None = None, allow_json: bool = False
) -> tuple[str, dict[str, Any]]:
    """(record name, record) from single-object bytes, or JSON where allowed."""
    schemas = default_schemas()
    if data[:2] != MAGIC:
        if allow_json and expected and data[:1] in (b"{", b" ", b"\n", b"\t"):
            _check_size(expected, len(data))
            record = from_json(expected, data)
            validate(expected, record)
            return expected, record
        raise PoisonMessage(
            Reason.NOT_AVRO, f"no single-object marker ({data[:2].hex() or 'empty'})"
        )
    if len(data) < 10:
        raise PoisonMessage(Reason.TRUNCATED, f"{len(data)} bytes is shorter than the header")
    name = schemas.name_for(bytes(data[2:10]))
    if name is None:
        raise PoisonMessage(Reason.UNKNOWN_FINGERPRINT, f"fingerprint {data[2:10].hex()}")
    if expected is not None and name != expected:
        raise PoisonMessage(Reason.WRONG_TYPE, f"a {name} record where {expected} is expected")
    _check_size(name, len(data))
    record = _body(name, bytes(data[10:]))
    validate(name, record)
    return name, record


def _check_size(name: str, size: int) -> None:
    limit = LIMITS.get(name, 64 * KIB)
    if size > limit:
        raise PoisonMessage(Reason.OVERSIZE, f"{name} of {size} bytes exceeds {limit}")


def _finite(value: Any, what: str) -> None:
    if isinstance(value, float) and not math.isfinite(value):
        raise PoisonMessage(Reason.NON_FINITE, f"{what} is {value}")


def validate(name: str, record: Mapping[str, Any]) -> None:
    """Semantic checks the schema cannot express (finite numbers, non-empty ids)."""
    if name == "FeatureEvent":
        if not record["association_id"]:
            raise PoisonMessage(Reason.WRONG_TYPE, "empty association_id")
        for key, value in record["features"].items():
            _finite(value, f"feature {key!r}")
    elif name == "Actual":
        _finite(record["label"], "label")
    elif name == "Prediction":
        _finite(record["prediction"], "prediction")
        for key, value in record["probabilities"].items():
            _finite(value, f"probability of {key!r}")
