"""The columnar FeatureEvent reader takes only what the per-message decoder reads the same way."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from services.common.errors import PoisonMessage
from services.common.event_columns import EventColumnsReader
from services.common.serde import Serde
from tests.avro_samples import SCHEMAS, feature_event, mutations, prediction, random_shape

pytestmark = pytest.mark.unit


def plain_event(
    rng: random.Random, shape: list[tuple[str, str]], deployment: str = "credit"
) -> dict:
    """An event on the columnar path: short ASCII strings, no attributes."""
    event = feature_event(rng, shape)
    event["deployment"] = deployment
    event["association_id"] = f"e-{rng.randrange(10**6)}"
    event["event_time"] = rng.choice([0, 1, -1, 1_795_000_000_000, -(2**62)])
    event["attributes"] = {}
    for key, kind in shape:
        if kind == "string":
            event["features"][key] = rng.choice(["", "4", "car", "x" * 63])
    return event


def decoded(codec: Serde, data: bytes) -> dict | None:
    try:
        return codec.decode(data, expected="FeatureEvent")[1]
    except PoisonMessage:
        return None


def same(value: object, kind: str, got: object) -> bool:
    if kind == "numeric":
        return (
            value.__class__ is float
            and math.copysign(1, value) == math.copysign(1, got)
            and (value == got)
        )
    return value == got and value.__class__ is got.__class__


def check_batch(codec: Serde, reader: EventColumnsReader, batch: list[bytes]) -> int:
    """Every row taken decodes to the same record; every row is taken or returned; count taken."""
    groups, rest = reader.read(batch)
    taken = [int(i) for g in groups for i in g.rows]
    assert sorted(taken + rest) == list(range(len(batch)))
    for g in groups:
        assert list(g.rows) == sorted(g.rows)
        for k, i in enumerate(g.rows):
            record = decoded(codec, batch[i])
            assert record is not None, f"taken but refused: {batch[i].hex()}"
            assert record["deployment"] == g.deployment
            assert record["event_time"] == g.times[k]
            assert record["attributes"] == {}
            assert list(record["features"]) == list(g.columns), batch[i].hex()
            for name, (kind, column) in g.columns.items():
                assert same(record["features"][name], kind, column[k]), (name, batch[i].hex())
    return len(taken)


def test_events_of_learned_layouts_are_read_as_the_records_are():
    rng = random.Random(11)
    codec = Serde(SCHEMAS)
    reader = EventColumnsReader.for_events(codec)
    shapes = [random_shape(rng) for _ in range(6)] + [[("f0", "double"), ("car", "string")]]
    for shape in shapes:
        for deployment in ("credit", "fraud"):
            event = plain_event(rng, shape, deployment)
            reader.learn(codec.decode(codec.encode("FeatureEvent", event))[1])
    batch = []
    for _ in range(400):
        event = plain_event(rng, rng.choice(shapes), rng.choice(["credit", "fraud"]))
        batch.append(codec.encode("FeatureEvent", event))
    assert check_batch(codec, reader, batch) == len(batch)


def test_anything_unusual_is_left_to_the_per_message_decoder():
    rng = random.Random(12)
    codec = Serde(SCHEMAS)
    reader = EventColumnsReader.for_events(codec)
    shapes = [random_shape(rng) for _ in range(4)]
    for shape in shapes:
        reader.learn(codec.decode(codec.encode("FeatureEvent", plain_event(rng, shape)))[1])
    batch = []
    for _ in range(60):
        shape = rng.choice(shapes)
        event = plain_event(rng, shape) if rng.random() < 0.5 else feature_event(rng, shape)
        for key, kind in shape:
            if kind == "double" and rng.random() < 0.1:
                event["features"][key] = rng.choice([float("nan"), float("inf"), -0.0])
        data = codec.encode("FeatureEvent", event)
        batch += [data, *mutations(data, rng, 10)]
    batch += [codec.encode("Prediction", prediction(rng)), b"", b"{}", b"\xc3\x01"]
    taken = check_batch(codec, reader, batch)
    assert 0 < taken < len(batch)


def test_nothing_is_taken_before_a_layout_is_learned_or_from_tiny_batches():
    rng = random.Random(13)
    codec = Serde(SCHEMAS)
    reader = EventColumnsReader.for_events(codec)
    shape = [("f0", "double")]
    batch = [codec.encode("FeatureEvent", plain_event(rng, shape)) for _ in range(20)]
    assert reader.read(batch) == ([], list(range(20)))
    reader.learn(codec.decode(batch[0])[1])
    assert reader.read(batch[:3]) == ([], [0, 1, 2])
    groups, rest = reader.read(batch)
    assert rest == [] and np.array_equal(groups[0].rows, np.arange(20))
