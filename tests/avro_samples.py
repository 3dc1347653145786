"""Generated records and mutated bodies for the hand-written codecs' tests (against fastavro)."""

from __future__ import annotations

import io
import random

import fastavro

from services.common.schemas import default_schemas

SCHEMAS = default_schemas()
WORDS = ["a", "b", "age", "zip", "région", "日本", "x" * 70, "", "car", "loan"]


def reference_write(name: str, record: dict) -> bytes:
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, SCHEMAS.parsed(name), record)
    return buf.getvalue()


def reference_read(name: str, body: bytes) -> dict | None:
    """fastavro's record, or None where it fails or leaves bytes over (serde refuses those)."""
    stream = io.BytesIO(body)
    try:
        record = fastavro.schemaless_reader(stream, SCHEMAS.parsed(name))
    except Exception:
        return None
    return record if stream.tell() == len(body) else None


def feature_event(rng: random.Random, shape: list[tuple[str, str]]) -> dict:
    features: dict = {}
    for key, kind in shape:
        if kind == "double":
            features[key] = rng.choice([0.0, -1.5, 1e300, rng.uniform(-1e6, 1e6)])
        elif kind == "string":
            features[key] = rng.choice(WORDS)
        else:
            features[key] = None
    return {
        "association_id": rng.choice(["e-1", "", "id-" + "9" * 80, "ü"]),
        "deployment": rng.choice(["credit", "fraud"]),
        "event_time": rng.choice([0, 1, -1, 1_795_000_000_000, 2**62, -(2**62)]),
        "features": features,
        "attributes": rng.choice([{}, {"region": "eu"}, {"a": "1", "b": "2"}]),
    }


def random_shape(rng: random.Random) -> list[tuple[str, str]]:
    keys = rng.sample(["f0", "f1", "age", "zip", "région", "k" * 70, "car", "n"], rng.randint(0, 8))
    return [(k, rng.choice(["double", "double", "string", "null"])) for k in keys]


def prediction(rng: random.Random) -> dict:
    classes = rng.choice([[], ["0", "1"], ["no", "yes", "maybe"], ["é"]])
    return {
        "association_id": rng.choice(["e-1", "", "id-" + "9" * 80]),
        "deployment": rng.choice(["credit", "fraud"]),
        "model_name": "credit",
        "model_version": rng.choice([1, 2, 300, 2**40]),
        "model_id": "ab" * 32,
        "role": rng.choice(["champion", "challenger", "variant"]),
        "served": rng.choice([True, False]),
        "prediction": rng.choice([None, "1", "yes", 0.5, -3.25, 1e300]),
        "probabilities": {c: rng.random() for c in classes},
        "humility": rng.choice([[], ["uncertain"], ["outlier:age", "unseen:car"]]),
        "overridden": rng.choice([True, False]),
        "event_time": rng.choice([0, 1_795_000_000_000, -5, 2**62]),
        "scored_time": rng.choice([1_795_000_000_100, 7]),
        "input_partition": rng.choice([0, 5, 2**31 - 1]),
        "input_offset": rng.choice([0, 123_456, 2**50]),
    }


def mutations(body: bytes, rng: random.Random, n: int = 60) -> list[bytes]:
    """Cut, extended and byte-flipped copies of a body."""
    out = [body[:i] for i in range(len(body))] + [body + b"\x00", body + b"\x02x"]
    for _ in range(n):
        i = rng.randrange(len(body))
        out.append(body[:i] + bytes([rng.randrange(256)]) + body[i + 1 :])
    return out
