"""The hand-written codecs agree with fastavro byte for byte, and step aside for anything else."""

from __future__ import annotations

import functools
import io
import random
import struct

import fastavro
import numpy as np
import pytest

from services.common.hot_codecs import (
    FeatureEventReader,
    Miss,
    PredictionReader,
    PredictionWriter,
    read_long,
    write_long,
)
from tests.avro_samples import (
    SCHEMAS,
    feature_event,
    mutations,
    prediction,
    random_shape,
    reference_read,
    reference_write,
)

pytestmark = pytest.mark.unit

# -- varints ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "n", [0, 1, -1, 63, 64, -64, -65, 2**31, 1_795_000_000_000, 2**62, -(2**62)]
)
def test_longs_round_trip_like_fastavro(n):
    body = write_long(n)
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, "long", n)
    assert body == buf.getvalue()
    assert read_long(body, 0) == (n, len(body))


def test_longs_out_of_range_or_too_long_miss():
    with pytest.raises(Miss):
        write_long(2**63)
    with pytest.raises(Miss):
        read_long(b"\xff" * 9 + b"\x02", 0)  # more than 64 bits
    with pytest.raises(Miss):
        read_long(b"\x80", 0)  # cut


# -- FeatureEvent ---------------------------------------------------------------------------


def test_feature_events_match_fastavro_once_their_shape_is_learned():
    rng = random.Random(1)
    reader = FeatureEventReader()
    fast = 0
    for _ in range(300):
        shape = random_shape(rng)
        for _ in range(3):
            record = feature_event(rng, shape)
            body = reference_write("FeatureEvent", record)
            got = reader.read(body)
            if got is None:
                reader.learn(reference_read("FeatureEvent", body))
                got = reader.read(body)
            assert got == reference_read("FeatureEvent", body)
            assert list(got) == list(record)  # fields in schema order
            fast += 1
    assert fast == 900


def test_feature_event_template_never_accepts_what_fastavro_reads_differently():
    rng = random.Random(2)
    reader = FeatureEventReader()
    taken = 0
    for _ in range(40):
        record = feature_event(rng, random_shape(rng))
        body = reference_write("FeatureEvent", record)
        reader.learn(record)
        for bad in mutations(body, rng):
            got = reader.read(bad)
            if got is not None:
                taken += 1
                assert got == reference_read("FeatureEvent", bad), bad.hex()
    assert taken > 100  # flipped value bytes stay on the fast path


def test_feature_event_of_another_shape_misses_until_learned():
    reader = FeatureEventReader()
    a = {
        "association_id": "1",
        "deployment": "d",
        "event_time": 5,
        "features": {"x": 1.0, "c": "u"},
        "attributes": {},
    }
    b = dict(a, features={"x": None, "c": "u"})
    c = dict(a, features={"c": "u", "x": 1.0})  # same keys, other order
    reader.learn(a)
    assert reader.read(reference_write("FeatureEvent", a)) == a
    assert reader.read(reference_write("FeatureEvent", b)) is None
    assert reader.read(reference_write("FeatureEvent", c)) is None
    reader.learn(b)
    assert reader.read(reference_write("FeatureEvent", b)) == b
    assert reader.read(reference_write("FeatureEvent", a)) == a  # both shapes kept


def test_feature_event_with_a_repeated_key_goes_to_fastavro():
    # A hand-made map with "x" twice: fastavro keeps the last value; the template must not match.
    reader = FeatureEventReader()
    reader.learn(
        {
            "association_id": "1",
            "deployment": "d",
            "event_time": 5,
            "features": {"x": 1.0, "y": 2.0},
            "attributes": {},
        }
    )
    entry = b"\x02x\x02" + struct.pack("<d", 1.0)
    body = b"\x021\x02d\x0a" + b"\x04" + entry + entry + b"\x00" + b"\x00"
    assert reader.read(body) is None
    assert reference_read("FeatureEvent", body)["features"] == {"x": 1.0}


# -- Prediction ---------------------------------------------------------------------------


def test_predictions_encode_and_decode_like_fastavro():
    rng = random.Random(3)
    writer, reader = PredictionWriter(), PredictionReader()
    for _ in range(1000):
        record = prediction(rng)
        body = writer.write(record)
        assert body == reference_write("Prediction", record)
        got = reader.read(body)
        assert got == record
        assert list(got) == list(record)


def test_prediction_reader_never_accepts_what_fastavro_reads_differently():
    rng = random.Random(4)
    reader = PredictionReader()
    taken = 0
    for _ in range(40):
        body = reference_write("Prediction", prediction(rng))
        reader.read(body)  # its middle is now known
        for bad in mutations(body, rng):
            got = reader.read(bad)
            if got is not None:
                taken += 1
                assert got == reference_read("Prediction", bad), bad.hex()
    assert taken > 100


@pytest.mark.parametrize(
    "change",
    [
        {"probabilities": {"0": np.float64(0.25)}},
        {"prediction": 1},
        {"prediction": True},
        {"model_version": True},
        {"served": 1},
        {"input_partition": 2**31},
        {"event_time": 2**63},
        {"association_id": b"bytes"},
        {"humility": ["\ud800"]},
    ],
)
def test_unusual_prediction_values_are_left_to_fastavro(change):
    record = dict(prediction(random.Random(5)), **change)
    assert PredictionWriter().write(record) is None


# -- through serde: the same records and the same refusals with and without the fast paths ------


def _serde_outcome(serde, data: bytes):
    from services.common.errors import PoisonMessage

    try:
        return serde.decode(data)
    except PoisonMessage as exc:
        return ("refused", exc.reason)


def test_serde_decodes_and_refuses_alike_with_and_without_the_fast_paths():
    from services.common.serde import Serde

    rng = random.Random(6)
    fast = Serde(SCHEMAS)
    plain = Serde(SCHEMAS)
    plain._readers = {}  # fastavro only
    messages = []
    for _ in range(30):
        event = feature_event(rng, random_shape(rng))
        event["features"]["nan"] = rng.choice([1.0, float("nan"), float("inf")])
        messages.append(plain.encode("FeatureEvent", event))
        messages.append(fast.encode("Prediction", prediction(rng)))
    taken = []
    for name, read in list(fast._readers.items()):
        fast._readers[name] = lambda body, read=read: taken.append(read(body)) or taken[-1]
    for data in messages:  # a FeatureEvent's first decode teaches the fast path its shape
        for bad in [data, *mutations(data, rng, 20)]:
            assert _serde_outcome(fast, bad) == _serde_outcome(plain, bad), bad.hex()
    assert sum(record is not None for record in taken) > 300  # the fast paths did the reading


def test_a_decoder_for_one_record_decodes_and_refuses_like_decode():
    from services.common.errors import PoisonMessage
    from services.common.serde import Serde

    def outcome(decode, data):
        try:
            return decode(data)
        except PoisonMessage as exc:
            return ("refused", exc.reason)

    rng = random.Random(7)
    fast, plain = Serde(SCHEMAS), Serde(SCHEMAS)
    plain._readers = {}
    taken = []
    for name, read in list(fast._readers.items()):
        fast._readers[name] = lambda body, read=read: taken.append(read(body)) or taken[-1]
    names = ("FeatureEvent", "Prediction")
    decoders = {name: fast.decoder_for(name) for name in names}
    messages = []
    for _ in range(30):
        event = feature_event(rng, random_shape(rng))
        event["features"]["nan"] = rng.choice([1.0, float("nan"), float("inf")])
        event["association_id"] = rng.choice(["", "a-1"])
        messages.append(plain.encode("FeatureEvent", event))
        pred = prediction(rng)
        pred["probabilities"] = {"0": rng.choice([0.5, float("nan")]), "1": 0.5}
        messages.append(fast.encode("Prediction", pred))
    for data in messages:
        for bad in [data, *mutations(data, rng, 20)]:
            for name in names:  # each record also arrives where the other one is expected
                want = outcome(functools.partial(plain.decode, expected=name), bad)
                assert outcome(decoders[name], bad) == want, (name, bad.hex())
    assert sum(record is not None for record in taken) > 300  # the fast paths did the reading
