"""R19 for the scorer: hostile `events` values through the real decode-and-handle path.

Each example is one hostile value followed by a valid event, run as one batch through the
scorer's own Runner, TopicDecoder and ScoringHandler with a real ONNX champion, a shadow
challenger and humility rules (only the Kafka clients are stand-ins). Whatever the bytes: nothing
escapes, the hostile value is answered or dead-lettered (with its original bytes and a reason)
exactly once, the handler never crashes on it (a crash is the runner's last resort, not a way to
refuse input), and the valid event after it is answered. Examples are derandomized, so the run
is the same in CI every time; inputs that once broke something are kept as `@example`s.
"""

from __future__ import annotations

import functools
import json

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from services.common import serde
from services.scorer.inference import load_model
from services.scorer.model_store import Snapshot
from services.trainer.dataset import credit_rows
from tests.model_factory import credit_content, deployment
from tests.poison import POISON_KINDS, make_poison
from tests.scorer_support import InProcessScorer, in_process_scorer

pytestmark = pytest.mark.unit

FUZZ = settings(
    derandomize=True,
    database=None,
    deadline=None,
    max_examples=60,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
ROW = next(iter(credit_rows(1, seed=11)))[0]
NUMERIC = [k for k, v in ROW.items() if isinstance(v, float)]
CATEGORICAL = [k for k, v in ROW.items() if isinstance(v, str)]
HUMILITY = [
    {"kind": "outlier", "feature": None, "margin": 0.0, "action": "flag"},
    {"kind": "unseen_category", "feature": None, "action": "override", "override_value": "0"},
    {"kind": "uncertain", "feature": None, "low": 0.0, "high": 0.6, "action": "route"},
]
# JSON tokens for any field: non-finite and out-of-range numbers, wrong types, huge strings.
TOKENS = [
    "NaN",
    "Infinity",
    "-Infinity",
    "1e30",
    "-1e30",
    "1e309",
    "1" + "0" * 400,
    "9223372036854775808",
    "-9223372036854775809",
    "-0.0",
    "5e-324",
    "true",
    "null",
    '""',
    '"12"',
    '"abc"',
    '"\\ud800"',
    "[]",
    "{}",
    "[1, 2]",
    '{"a": 1}',
    json.dumps("x" * 70_000),
    json.dumps("y" * 500),
]


def valid_record(aid: str = "valid") -> dict:
    return {
        "association_id": aid,
        "deployment": "credit",
        "event_time": 1_700_000_000_000,
        "features": dict(ROW),
        "attributes": {"region": "eu"},
    }


@functools.cache
def scorer() -> InProcessScorer:
    content = credit_content(1)
    champion = load_model(content)
    twin = load_model({**content, "model_id": "twin", "version": 2})
    ref = {"name": "credit", "model_id": "twin", "version": 2}
    dep = deployment(content, challengers=({"content": ref, "weight": 0.0},), humility=HUMILITY)
    view = Snapshot({"credit": dep}, {champion.model_id: champion, "twin": twin})
    return in_process_scorer(lambda: view, attempts=1)


def deep(depth: int, kind: str) -> str:
    return ("[" * depth + "]" * depth) if kind == "list" else ('{"a":' * depth + "1" + "}" * depth)


@st.composite
def hostile_json(draw) -> bytes:
    """A JSON event with one to three fields replaced, some dropped, or nested deep."""
    slots = {k: json.dumps(v) for k, v in valid_record("json").items() if k != "features"}
    features = {k: json.dumps(v) for k, v in ROW.items()}
    token = st.one_of(
        st.sampled_from(TOKENS),
        st.builds(deep, st.sampled_from([50, 3_000, 30_000]), st.sampled_from(["list", "map"])),
        st.text(max_size=20).map(json.dumps),
        st.floats(allow_nan=False).map(repr),
        st.integers().map(str),
    )
    fields = [*slots, "features", *NUMERIC, *CATEGORICAL]
    for field in draw(st.lists(st.sampled_from(fields), min_size=1, max_size=3, unique=True)):
        value = draw(token)
        if field in slots:
            slots[field] = value
        elif field == "features":
            features = value
        elif isinstance(features, dict):
            features[field] = value
    if draw(st.booleans()):
        slots["deployment"] = '"no-such-deployment"'
    dropped = draw(st.lists(st.sampled_from([*NUMERIC, *CATEGORICAL]), max_size=2, unique=True))
    if isinstance(features, dict):
        body = ", ".join(f'"{k}": {v}' for k, v in features.items() if k not in dropped)
        features = "{" + body + "}"
    text = ", ".join(f'"{k}": {v}' for k, v in {**slots, "features": features}.items())
    return ("{" + text + "}").encode()


@st.composite
def mutated_avro(draw) -> bytes:
    """A valid FeatureEvent's bytes with bits flipped, cut short, or with bytes appended."""
    data = bytearray(serde.encode("FeatureEvent", valid_record("avro")))
    kind = draw(st.sampled_from(["flip", "truncate", "append", "flip_and_append"]))
    if kind in ("flip", "flip_and_append"):
        for bit in draw(st.lists(st.integers(0, 8 * len(data) - 1), min_size=1, max_size=6)):
            data[bit // 8] ^= 1 << (bit % 8)
    if kind == "truncate":
        data = data[: draw(st.integers(0, len(data) - 1))]
    if kind in ("append", "flip_and_append"):
        data += draw(st.binary(min_size=1, max_size=40))
    return bytes(data)


@st.composite
def extreme_avro(draw) -> bytes:
    """Well-formed Avro with extreme but encodable values: huge numbers, strings, times."""
    record = valid_record("extreme")
    number = st.sampled_from([1e308, -1e308, 1e30, -1e30, 5e-324, 0.0, 3.4e38, -3.5e38])
    for name in draw(st.lists(st.sampled_from(NUMERIC), min_size=1, max_size=3, unique=True)):
        record["features"][name] = draw(number)
    if draw(st.booleans()):
        name = draw(st.sampled_from(CATEGORICAL))
        record["features"][name] = draw(st.sampled_from(["", "z" * 30_000, "\x00", "é" * 50]))
    record["event_time"] = draw(st.sampled_from([0, -(2**63), 2**63 - 1, 1_700_000_000_000]))
    if draw(st.booleans()):
        record["features"] = {**record["features"], "extra": draw(number)}
    return serde.encode("FeatureEvent", record)


def check(hostile: bytes) -> None:
    """Feed the hostile value and a valid event after it; both are accounted for."""
    s = scorer()
    first = s.offset
    sent = s.feed([hostile, serde.encode("FeatureEvent", valid_record())])
    champion: dict[int, int] = {}
    dead: dict[int, dict] = {}
    for topic, _key, value in sent:
        if topic == s.namer.predictions:
            p = serde.decode(value, expected="Prediction")[1]
            if p["role"] == "champion":
                champion[p["input_offset"]] = champion.get(p["input_offset"], 0) + 1
        elif topic == s.namer.deadletter:
            d = serde.decode(value, expected="DeadLetter")[1]
            assert d["source_offset"] not in dead, "dead-lettered twice"
            dead[d["source_offset"]] = d
    assert champion.get(first + 1) == 1 and first + 1 not in dead, "the valid event after it"
    assert (champion.get(first) == 1) != (first in dead), (champion, list(dead))
    if first in dead:
        letter = dead[first]
        assert letter["original"] == hostile and letter["service"] == "scorer"
        # Both are last resorts for an unexpected exception: a refusal must name its reason.
        assert letter["reason"] not in ("handler_failed", "decode_failed"), letter["error"]


@FUZZ
@given(st.binary(max_size=300))
@example(b"")
@example(b"{}")
@example(b"\xc3\x01")
def test_random_bytes(value):
    check(value)


@FUZZ
@given(mutated_avro())
def test_mutated_avro(value):
    check(value)


@FUZZ
@given(extreme_avro())
def test_extreme_but_well_formed_avro(value):
    check(value)


def with_event_time(token: str) -> bytes:
    """A valid JSON event whose event_time is the raw JSON `token`."""
    text = json.dumps({**valid_record("t"), "event_time": "TOKEN"})
    return text.replace('"TOKEN"', token).encode()


# The inputs issue 27 names as crashing the process (decoder errors that were not PoisonMessage).
DEEP = b'{"association_id": "d", "deployment": "credit", "features": ' + b"[" * 20_000
ISSUE_27 = [
    DEEP + b"]" * 20_000 + b"}",
    with_event_time("NaN"),
    with_event_time("Infinity"),
    with_event_time("-Infinity"),
    with_event_time("1e30"),
]


@settings(FUZZ, max_examples=150)
@given(hostile_json())
@example(ISSUE_27[0])
@example(ISSUE_27[1])
@example(ISSUE_27[2])
@example(ISSUE_27[3])
@example(ISSUE_27[4])
def test_hostile_json(value):
    check(value)


@pytest.mark.parametrize("kind", POISON_KINDS)
def test_every_known_poison_kind(kind):
    check(make_poison(kind, seed=1))
