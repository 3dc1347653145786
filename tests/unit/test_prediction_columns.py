"""The columnar Prediction reader takes only what the per-message decoder reads the same way."""

from __future__ import annotations

import random

import pytest

from services.common.errors import PoisonMessage
from services.common.prediction_columns import PredictionColumnsReader, as_tuple
from services.common.serde import Serde
from tests.avro_samples import SCHEMAS, mutations, prediction

pytestmark = pytest.mark.unit


def plain(rng: random.Random) -> dict:
    """A prediction on the columnar path: short ASCII strings, no humility flags (32 layouts)."""
    p = prediction(rng)
    p["model_version"] = rng.choice([1, 2**40])
    p["role"] = rng.choice(["champion", "challenger"])
    classes = {"credit": [["0", "1"], []], "fraud": [["no", "yes", "é"], ["1"]]}
    p["probabilities"] = {c: rng.random() for c in rng.choice(classes[p["deployment"]])}
    p["association_id"] = rng.choice(["", "a-1", f"id-{rng.randrange(10**9)}"])
    p["humility"] = []
    if isinstance(p["prediction"], str):
        p["prediction"] = rng.choice(["0", "1", "yes", ""])
    p["input_partition"] = rng.choice([0, 5, 2**31 - 1])
    p["event_time"] = rng.choice([0, 1_795_000_000_000, -5])
    p["input_offset"] = rng.choice([0, 123_456, 2**50])
    return p


def check_batch(codec: Serde, reader: PredictionColumnsReader, batch: list[bytes]) -> int:
    """Every row taken is what the decoded record gives; every row is taken or returned."""
    blocks, rest = reader.read(batch)
    taken = [int(i) for b in blocks for i in b.rows]
    assert sorted(taken + rest) == list(range(len(batch)))
    for b in blocks:
        assert list(b.rows) == sorted(b.rows) and len(b.tuples) == len(b.rows)
        for i, row in zip(b.rows, b.tuples, strict=True):
            try:
                want = as_tuple(codec.decode(batch[i], expected="Prediction")[1])
            except PoisonMessage:
                raise AssertionError(f"taken but refused: {batch[i].hex()}") from None
            assert repr(row) == repr(want), batch[i].hex()  # repr: -0.0, types, key order
    return len(taken)


def _learned(rng: random.Random, codec: Serde, records: list[dict]) -> PredictionColumnsReader:
    reader = PredictionColumnsReader.for_predictions(codec)
    for r in records:
        reader.learn(codec.decode(codec.encode("Prediction", r))[1])
    return reader


def test_predictions_of_learned_layouts_are_read_as_the_records_are():
    rng = random.Random(31)
    codec = Serde(SCHEMAS)
    records = [plain(rng) for _ in range(500)]
    reader = _learned(rng, codec, records)
    batch = [codec.encode("Prediction", r) for r in records]
    assert check_batch(codec, reader, batch) == len(batch)


def test_anything_unusual_is_left_to_the_per_message_decoder():
    rng = random.Random(32)
    codec = Serde(SCHEMAS)
    records = [plain(rng) for _ in range(40)]
    reader = _learned(rng, codec, records)
    batch = []
    for original in records:
        r = dict(original)
        roll = rng.random()
        if roll < 0.2:
            r["humility"] = ["uncertain"]
        elif roll < 0.3 and r["probabilities"]:
            r["probabilities"] = {k: float("nan") for k in r["probabilities"]}
        elif roll < 0.4:
            r["prediction"] = rng.choice([float("inf"), -0.0, "é", "x" * 70])
        data = codec.encode("Prediction", r)
        batch += [data, *mutations(data, rng, 10)]
    batch += [
        codec.encode(
            "Actual", {"association_id": "a", "deployment": "d", "label": "1", "actual_time": 1}
        ),
        b"",
        b"\xc3\x01",
    ]
    taken = check_batch(codec, reader, batch)
    assert 0 < taken < len(batch)


def test_nothing_is_taken_before_a_layout_is_learned_or_from_tiny_batches():
    rng = random.Random(33)
    codec = Serde(SCHEMAS)
    record = plain(rng)
    batch = [codec.encode("Prediction", record) for _ in range(20)]
    reader = PredictionColumnsReader.for_predictions(codec)
    assert reader.read(batch) == ([], list(range(20)))
    reader.learn(codec.decode(batch[0])[1])
    assert reader.read(batch[:3]) == ([], [0, 1, 2])
    blocks, rest = reader.read(batch)
    assert rest == [] and [len(b.rows) for b in blocks] == [20]
