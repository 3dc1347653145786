"""Poison pills (R6) and size bombs (R7) for the events topic, built byte by byte.

They are made with fastavro and the schema files directly, not with our serde, so a bug in the
serde cannot make its own test inputs agree with it.
"""

from __future__ import annotations

import io
import json
import random
import struct
from pathlib import Path

import fastavro
from fastavro.schema import fingerprint, load_schema, to_parsing_canonical_form

from services.common.errors import Reason

SCHEMAS = Path(__file__).resolve().parents[1] / "schemas"

POISON_KINDS = (
    "random_bytes",
    "truncated",
    "unknown_fingerprint",
    "trailing_garbage",
    "wrong_type",
    "json_wrong_type",
    "nan",
    "inf",
    "size_bomb",
)

EXPECTED_REASON = {
    "random_bytes": Reason.NOT_AVRO.value,
    "truncated": Reason.TRUNCATED.value,
    "unknown_fingerprint": Reason.UNKNOWN_FINGERPRINT.value,
    "trailing_garbage": Reason.TRAILING_BYTES.value,
    "wrong_type": Reason.WRONG_TYPE.value,
    "json_wrong_type": Reason.WRONG_TYPE.value,
    "nan": Reason.NON_FINITE.value,
    "inf": Reason.NON_FINITE.value,
    "size_bomb": Reason.OVERSIZE.value,
}


def _schema(name: str) -> dict:
    return load_schema(str(SCHEMAS / f"{name}.avsc"))


def _frame(name: str, body: bytes) -> bytes:
    fp = bytes.fromhex(fingerprint(to_parsing_canonical_form(_schema(name)), "CRC-64-AVRO"))
    return b"\xc3\x01" + fp + body


def _body(name: str, record: dict) -> bytes:
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, _schema(name), record, strict_allow_default=True)
    return buf.getvalue()


def event(seed: int, **features) -> dict:
    """A valid FeatureEvent record."""
    return {
        "association_id": f"p-{seed}",
        "deployment": "d",
        "event_time": 1_700_000_000_000,
        "features": features or {"x": 1.0, "c": "a"},
        "attributes": {},
    }


def _zigzag_varint(n: int) -> bytes:
    z = (n << 1) ^ (n >> 63)
    out = bytearray()
    while True:
        b = z & 0x7F
        z >>= 7
        if z:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def size_bomb(declared_items: int = 50_000_000) -> bytes:
    """A ~40-byte FeatureEvent whose features map declares `declared_items` entries."""
    head = _zigzag_varint(len(b"p-bomb")) + b"p-bomb" + _zigzag_varint(1) + b"d"
    head += _zigzag_varint(1_700_000_000_000)
    return _frame("FeatureEvent", head + _zigzag_varint(declared_items) + b"\x02k")


def make_poison(kind: str, seed: int = 0) -> bytes:
    """One poison pill of the given kind (unique per seed)."""
    rng = random.Random(seed)
    valid = _frame("FeatureEvent", _body("FeatureEvent", event(seed)))
    if kind == "random_bytes":
        data = bytes(rng.randrange(256) for _ in range(40))
        return b"\x00" + data  # never the C3 01 marker nor a JSON object
    if kind == "truncated":
        return valid[: len(valid) - 5]
    if kind == "unknown_fingerprint":
        return b"\xc3\x01" + struct.pack("<Q", rng.getrandbits(64)) + valid[10:]
    if kind == "trailing_garbage":
        return valid + b"garbage" + str(seed).encode()
    if kind == "wrong_type":  # a well-formed record of another type on the events topic
        actual = {
            "association_id": f"p-{seed}",
            "deployment": "d",
            "label": "1",
            "actual_time": 1_700_000_000_000,
        }
        return _frame("Actual", _body("Actual", actual))
    if kind == "json_wrong_type":
        return json.dumps(
            {"association_id": f"p-{seed}", "deployment": "d", "features": "not a map"}
        ).encode()
    if kind == "nan":
        return _frame("FeatureEvent", _body("FeatureEvent", event(seed, x=float("nan"))))
    if kind == "inf":
        return _frame("FeatureEvent", _body("FeatureEvent", event(seed, x=float("-inf"))))
    if kind == "size_bomb":
        return size_bomb(50_000_000 + seed)
    raise ValueError(f"unknown poison kind {kind!r}")
