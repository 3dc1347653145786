"""Predictions as plain JSON on the predictions topic (what a non-Python service reports for an
external deployment): parsed with the champion's defaults, hostile input refused with the field
named, and counted by the drift service exactly like the same predictions in Avro."""

from __future__ import annotations

import json
from typing import Any

import pytest

from services.client.records import ModelRef, prediction_message
from services.common import serde
from services.common.errors import PoisonMessage, Reason
from services.common.json_input import from_json
from services.common.topic_decoder import TopicDecoder
from services.common.topics import TopicNamer
from tests.drift_support import T0, categorical_baseline, content, deployment, numeric_baseline
from tests.drift_support import prediction as avro_prediction
from tests.fuzz_cases import deep_json, drain, drift_rig

pytestmark = pytest.mark.unit

NAMER = TopicNamer("json.")
DECODE = TopicDecoder(NAMER)
GOOD = {
    "association_id": "tx-1",
    "deployment": "fraud",
    "model_name": "fraud",
    "model_version": 3,
    "model_id": "f" * 64,
    "prediction": "1",
    "probabilities": {"0": 0.25, "1": 0.75},
    "event_time": "2025-10-09T08:53:20Z",
}


def decode(obj: Any) -> dict[str, Any]:
    data = obj if isinstance(obj, bytes) else json.dumps(obj).encode()
    return DECODE(NAMER.predictions, data)[1]


def refused(obj: Any) -> PoisonMessage:
    with pytest.raises(PoisonMessage) as info:
        decode(obj)
    return info.value


def test_a_json_prediction_is_the_champions_served_row():
    record = decode(GOOD)
    assert record == {
        **{k: GOOD[k] for k in ("association_id", "deployment", "model_name", "model_id")},
        "model_version": 3,
        "role": "champion",
        "served": True,
        "prediction": "1",
        "probabilities": {"0": 0.25, "1": 0.75},
        "humility": [],
        "overridden": False,
        "event_time": 1_760_000_000_000,
        "scored_time": record["scored_time"],
        "input_partition": -1,
        "input_offset": -1,
    }
    assert record["scored_time"] > 1_760_000_000_000  # when it was read


def test_optional_fields_and_a_regression_value():
    minimal = {k: v for k, v in GOOD.items() if k not in ("probabilities", "event_time")}
    record = decode({**minimal, "prediction": 251000.5})
    assert record["probabilities"] == {} and record["prediction"] == 251000.5
    assert abs(record["event_time"] - record["scored_time"]) < 5_000  # now
    assert decode({**GOOD, "prediction": 1})["prediction"] == 1.0


def test_the_client_writes_what_the_json_path_reads():
    ref = ModelRef("fraud", 3, "f" * 64)
    msg = prediction_message(
        "fraud", "tx-1", ref, "1", {"0": 0.25, "1": 0.75}, "2025-10-09T08:53:20Z"
    )
    from_avro = serde.decode(msg.value, expected="Prediction")[1]
    from_text = decode(GOOD)
    assert {**from_avro, "scored_time": 0} == {**from_text, "scored_time": 0}


@pytest.mark.parametrize(
    ("change", "reason", "named"),
    [
        ({"prediction": float("nan")}, Reason.NON_FINITE, "prediction is nan"),
        ({"prediction": float("inf")}, Reason.NON_FINITE, "prediction is inf"),
        ({"prediction": 10**400}, Reason.OUT_OF_RANGE, "prediction is beyond a double"),
        ({"prediction": None}, Reason.WRONG_TYPE, "prediction is required"),
        ({"prediction": True}, Reason.WRONG_TYPE, "prediction must be a number"),
        ({"prediction": {"class": "1"}}, Reason.WRONG_TYPE, "prediction must be a number"),
        ({"prediction": ["1"]}, Reason.WRONG_TYPE, "prediction must be a number"),
        ({"probabilities": {"1": float("nan")}}, Reason.NON_FINITE, "probability of '1'"),
        ({"probabilities": {"1": float("-inf")}}, Reason.NON_FINITE, "probability of '1'"),
        ({"probabilities": {"1": "0.7"}}, Reason.WRONG_TYPE, "probability of '1' must be"),
        ({"probabilities": {"1": False}}, Reason.WRONG_TYPE, "probability of '1' must be"),
        ({"probabilities": {"1": 10**400}}, Reason.OUT_OF_RANGE, "probability of '1'"),
        ({"probabilities": [0.3, 0.7]}, Reason.WRONG_TYPE, "probabilities must be an object"),
        ({"probabilities": {"\ud800": 0.5}}, Reason.WRONG_TYPE, "not valid Unicode"),
        ({"model_version": "3"}, Reason.WRONG_TYPE, "model_version must be an integer"),
        ({"model_version": 3.0}, Reason.WRONG_TYPE, "model_version must be an integer"),
        ({"model_version": True}, Reason.WRONG_TYPE, "model_version must be an integer"),
        ({"model_version": 0}, Reason.OUT_OF_RANGE, "model_version 0"),
        ({"model_version": 2**63}, Reason.OUT_OF_RANGE, "model_version"),
        ({"model_version": None}, Reason.WRONG_TYPE, "model_version must be an integer"),
        ({"model_id": ""}, Reason.WRONG_TYPE, "model_id must be a non-empty string"),
        ({"model_id": 7}, Reason.WRONG_TYPE, "model_id must be a non-empty string"),
        ({"model_name": None}, Reason.WRONG_TYPE, "model_name must be a non-empty string"),
        ({"association_id": ""}, Reason.WRONG_TYPE, "association_id"),
        ({"deployment": ["fraud"]}, Reason.WRONG_TYPE, "deployment"),
        ({"event_time": float("nan")}, Reason.NON_FINITE, "event_time is nan"),
        ({"event_time": 1e30}, Reason.OUT_OF_RANGE, "event_time"),
        ({"event_time": "yesterday"}, Reason.WRONG_TYPE, "event_time 'yesterday'"),
        ({"role": "challenger"}, Reason.WRONG_TYPE, "unknown fields for Prediction: role"),
        ({"served": False}, Reason.WRONG_TYPE, "unknown fields for Prediction: served"),
        ({"input_offset": 4, "x": 1}, Reason.WRONG_TYPE, "input_offset, x"),
    ],
)
def test_hostile_json_predictions_are_refused_naming_the_field(change, reason, named):
    obj = {**GOOD, **change}
    problem = refused(obj)
    assert problem.reason is reason, problem
    assert named in problem.detail


@pytest.mark.parametrize("missing", ["association_id", "deployment", "model_id", "prediction"])
def test_required_fields(missing):
    problem = refused({k: v for k, v in GOOD.items() if k != missing})
    assert problem.reason is Reason.WRONG_TYPE and missing in problem.detail


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b'{"association_id": "a", ', Reason.INVALID_JSON),
        (b"[1, 2]", Reason.WRONG_TYPE),
        (b'"just a string"', Reason.WRONG_TYPE),
        (b"NaN", Reason.NOT_AVRO),  # not JSON-looking: a bare NaN is no JSON value
        (deep_json("prediction", 50), Reason.WRONG_TYPE),
        (b'{"prediction":' + b"[" * 100_000 + b"]" * 100_000 + b"}", Reason.OVERSIZE),
        (b'{"association_id": "' + b"a" * 70_000 + b'"}', Reason.OVERSIZE),
        (b"\xff\xfe{}", Reason.NOT_AVRO),
    ],
)
def test_malformed_documents_are_refused_with_a_reason(data, reason):
    assert refused(data).reason is reason


def test_deep_nesting_past_the_parser_is_invalid_json():
    data = b'{"prediction":' + b"[" * 30_000 + b"]" * 30_000 + b"}"
    with pytest.raises(PoisonMessage) as info:
        from_json("Prediction", data)
    assert info.value.reason is Reason.INVALID_JSON


# -- the drift service reads them ------------------------------------------------------------

C = content("c" * 64, 1, [numeric_baseline("x"), categorical_baseline("c", {"a": 5, "b": 5})])
CONTROL = [{"content": C, "key_id": "k", "signature": b""}, deployment("d", C)]


def _json_prediction(i: int, p1: float) -> bytes:
    row = avro_prediction("d", i, C, p1, T0 + i)
    keep = ("association_id", "deployment", "model_name", "model_version", "model_id")
    fields = {k: row[k] for k in keep}
    fields |= {"prediction": row["prediction"], "probabilities": row["probabilities"]}
    return json.dumps({**fields, "event_time": row["event_time"]}).encode()


def _client_prediction(i: int, p1: float) -> bytes:
    row = avro_prediction("d", i, C, p1, T0 + i)
    ref = ModelRef(C["name"], C["version"], C["model_id"])
    probabilities = row["probabilities"]
    return prediction_message("d", f"a{i}", ref, row["prediction"], probabilities, T0 + i).value


def _avro_prediction(i: int, p1: float) -> bytes:
    return serde.encode("Prediction", avro_prediction("d", i, C, p1, T0 + i))


WRITERS = {"scorer": _avro_prediction, "json": _json_prediction, "client": _client_prediction}


def _rig(writer: str):
    loop = drift_rig(CONTROL, batch_size=40)
    for i in range(40):
        event = {
            "association_id": f"a{i}",
            "deployment": "d",
            "event_time": T0 + i,
            "features": {"x": i / 40, "c": "ab"[i % 2]},
            "attributes": {},
        }
        loop.log.append(loop.events, serde.encode("FeatureEvent", event))
        loop.log.append(loop.predictions, WRITERS[writer](i, (i % 10) / 10))
    drain(loop)
    return loop


@pytest.mark.parametrize("writer", ["json", "client"])
def test_drift_counts_reported_predictions_as_it_counts_the_scorers(writer):
    """JSON predictions, and the client's Avro ones (read as columns once a batch is big
    enough), land in the same windows with the same counts as the scorer's."""
    windows = {}
    for name in ("scorer", writer):
        loop = _rig(name)
        letters = [t for t, _, _ in loop.producer.sent if t == loop.namer.deadletter]
        assert letters == [], name
        open_windows = loop.monitors["d"].windows.open.values()
        windows[name] = [(w.aggregate.events, w.aggregate.predictions) for w in open_windows]
    assert windows[writer] == windows["scorer"] == [(40, 40)]
