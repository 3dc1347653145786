"""`streamops.Client` sending, without a broker: records checked as the services check them,
refusals that name the field and send nothing, keys, and report_prediction's pair of records."""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import numpy as np
import pytest
import streamops

from services.client import client as client_module
from services.client.records import ModelRef, event_message
from services.common import serde
from services.common.errors import ConfigError, Reason, StreamopsError

pytestmark = pytest.mark.unit

CHAMPION = {"model_name": "fraud", "version": 3, "model_id": "f" * 64}


class RecordingSender:
    """Stands in for the producer: keeps what would have been sent."""

    def __init__(self, conf: dict[str, Any]) -> None:
        self.conf = conf
        self.sent: list[tuple[str, Any]] = []
        self.flushed = 0

    def send(self, topic: str, message: Any) -> None:
        self.sent.append((topic, message))

    def flush(self, timeout: float = 30.0) -> None:
        self.flushed += 1


@pytest.fixture()
def client(monkeypatch) -> streamops.Client:
    monkeypatch.setattr(client_module, "Sender", RecordingSender)
    return streamops.Client(bootstrap="127.0.0.1:1", prefix="u.", environ={})


def sent(client: streamops.Client) -> list[tuple[str, str, dict[str, Any]]]:
    """(topic, key, decoded record) of everything sent, decoded as the services decode it."""
    sender = client._sender
    if sender is None:
        return []
    out = []
    for topic, message in sender.sent:
        name = client.topics.record_for(topic)
        assert message.headers == [serde.fingerprint_header(name)]
        out.append((topic, message.key, serde.decode(message.value, expected=name)[1]))
    return out


def test_an_event_is_keyed_by_its_association_id_and_decodes_as_sent(client):
    aid = client.send_event(
        "credit",
        {"salary": 52000, "car": "3", "age": None, "score": np.float64(0.5)},
        association_id="a-1",
        event_time="2025-10-09T08:53:20Z",
        attributes={"region": "eu"},
    )
    assert aid == "a-1"
    [(topic, key, record)] = sent(client)
    assert (topic, key) == ("u.events", "a-1")
    assert record == {
        "association_id": "a-1",
        "deployment": "credit",
        "event_time": 1_760_000_000_000,
        "features": {"salary": 52000.0, "car": "3", "age": None, "score": 0.5},
        "attributes": {"region": "eu"},
    }


def test_a_missing_association_id_is_generated_and_returned(client):
    first = client.send_event("credit", {"x": 1.0})
    second = client.send_event("credit", {"x": 1.0})
    assert first != second and len(first) == 32
    assert [key for _, key, _ in sent(client)] == [first, second]


def test_times_may_be_datetimes_millis_or_iso(client):
    when = dt.datetime(2025, 10, 9, 8, 53, 20, tzinfo=dt.UTC)
    naive = when.replace(tzinfo=None)  # UTC, as a JSON ISO string without offset is
    for t in (
        when,
        naive,
        1_760_000_000_000,
        "2025-10-09T08:53:20+00:00",
        np.int64(1_760_000_000_000),
    ):
        client.send_actual("credit", "a-1", "1", actual_time=t)
    times = {record["actual_time"] for _, _, record in sent(client)}
    assert times == {1_760_000_000_000}


def test_an_actual_is_keyed_and_its_label_kept(client):
    client.send_actual("credit", "a-7", "1")
    client.send_actual("house", "h-1", 251_000.5)
    [(t1, k1, r1), (t2, k2, r2)] = sent(client)
    assert (t1, k1, r1["label"]) == ("u.actuals", "a-7", "1")
    assert (t2, k2, r2["label"]) == ("u.actuals", "h-1", 251_000.5)


@pytest.mark.parametrize(
    ("call", "named"),
    [
        (lambda c: c.send_event("credit", {"age": math.nan}), "feature 'age' is nan"),
        (lambda c: c.send_event("credit", {"age": math.inf}), "feature 'age' is inf"),
        (lambda c: c.send_event("credit", {"age": [1]}), "feature 'age' must be a number"),
        (lambda c: c.send_event("credit", {"vip": True}), "feature 'vip' must be a number"),
        (lambda c: c.send_event("credit", {1: 2.0}), "features names must be strings"),
        (lambda c: c.send_event("credit", [1.0]), "features must be an object"),
        (lambda c: c.send_event("", {"x": 1.0}), "deployment must be a non-empty string"),
        (lambda c: c.send_event("credit", {"x": 1.0}, association_id=7), "association_id"),
        (lambda c: c.send_event("credit", {"x": 1.0}, event_time=math.nan), "event_time is nan"),
        (lambda c: c.send_event("credit", {"x": 1.0}, event_time="soon"), "event_time 'soon'"),
        (lambda c: c.send_event("credit", {"x": 1.0}, event_time=1e30), "event_time 1e+30"),
        (lambda c: c.send_event("credit", {"x": 1.0}, attributes={"r": 1}), "attributes"),
        (lambda c: c.send_event("credit", {"x": "\ud800"}), "feature 'x' is not valid Unicode"),
        (lambda c: c.send_event("credit", {"x": 10**400}), "feature 'x' is beyond a double"),
        (lambda c: c.send_actual("credit", "a", math.nan), "label is nan"),
        (lambda c: c.send_actual("credit", "a", None), "label is required"),
        (lambda c: c.send_actual("credit", "", "1"), "association_id"),
    ],
)
def test_a_refusal_names_the_field_and_sends_nothing(client, call, named):
    with pytest.raises(streamops.InvalidRecord) as refused:
        call(client)
    assert named in str(refused.value)
    assert isinstance(refused.value, ValueError)
    assert sent(client) == []


def test_an_event_over_the_size_limit_is_refused_as_the_services_would():
    features = {f"f{i}": "x" * 100 for i in range(1000)}  # ~100 KiB > 64 KiB
    with pytest.raises(streamops.InvalidRecord) as refused:
        event_message("credit", features, "a-1")
    assert refused.value.reason is Reason.OVERSIZE and "FeatureEvent" in str(refused.value)


def test_report_prediction_writes_the_event_and_the_champion_row_under_one_key(client):
    client.report_prediction(
        "fraud",
        "tx-1",
        {"amount": 12.5, "country": "fr"},
        "0",
        probabilities={"0": 0.9, "1": 0.1},
        model=CHAMPION,
        event_time=1_760_000_000_000,
    )
    [(t1, k1, event), (t2, k2, row)] = sent(client)
    assert (t1, t2) == ("u.events", "u.predictions") and k1 == k2 == "tx-1"
    assert event["features"] == {"amount": 12.5, "country": "fr"}
    assert event["event_time"] == row["event_time"] == 1_760_000_000_000
    assert row["model_name"] == "fraud" and row["model_version"] == 3
    assert row["model_id"] == "f" * 64
    assert (row["role"], row["served"], row["prediction"]) == ("champion", True, "0")
    assert row["probabilities"] == {"0": 0.9, "1": 0.1}
    assert (row["input_partition"], row["input_offset"]) == (-1, -1)


def test_report_prediction_without_a_time_gives_both_records_the_same_one(client):
    client.report_prediction("fraud", "tx-2", {"amount": 1.0}, 0.25, model=ModelRef.of(CHAMPION))
    [(_, _, event), (_, _, row)] = sent(client)
    assert event["event_time"] == row["event_time"] and row["prediction"] == 0.25


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"prediction": math.nan}, "prediction is nan"),
        ({"prediction": None}, "prediction is required"),
        ({"prediction": True}, "prediction must be a number"),
        ({"probabilities": {"1": math.inf}}, "probability of '1' is inf"),
        ({"probabilities": {"1": "high"}}, "probability of '1' must be a number"),
        ({"features": {"amount": math.nan}}, "feature 'amount' is nan"),
    ],
)
def test_report_prediction_sends_neither_record_when_one_is_refused(client, kwargs, named):
    args = {"features": {"amount": 1.0}, "prediction": "1", **kwargs}
    with pytest.raises(streamops.InvalidRecord, match=named):
        client.report_prediction("fraud", "tx-3", model=CHAMPION, **args)
    assert sent(client) == []


def test_a_model_must_name_the_champion():
    assert ModelRef.of(CHAMPION) == ModelRef("fraud", 3, "f" * 64)
    with pytest.raises(ValueError, match="model_name, version and model_id"):
        ModelRef.of({"name": "fraud"})


def test_close_flushes_and_a_closed_client_refuses_to_send(client):
    client.send_event("credit", {"x": 1.0})
    sender = client._sender
    client.close()
    client.close()  # twice does nothing
    assert sender.flushed == 1
    with pytest.raises(StreamopsError, match="closed"):
        client.send_event("credit", {"x": 1.0})


def test_explicit_arguments_win_over_the_environment():
    env = {
        "STREAMOPS_KAFKA_BOOTSTRAP": "k:1",
        "STREAMOPS_TOPIC_PREFIX": "env.",
        "STREAMOPS_CLI_REGISTRY_URL": "http://env:8000",
        "STREAMOPS_CLI_TOKEN": "env-token",
    }
    from_env = streamops.Client(environ=env).settings
    assert (from_env.kafka_bootstrap, from_env.topic_prefix) == ("k:1", "env.")
    assert from_env.registry_url == "http://env:8000"
    assert from_env.token.reveal() == "env-token"
    given = streamops.Client("k:2", "arg.", "http://arg:8000", "arg-token", environ=env).settings
    assert (given.kafka_bootstrap, given.topic_prefix) == ("k:2", "arg.")
    assert (given.registry_url, given.token.reveal()) == ("http://arg:8000", "arg-token")
    assert "arg-token" not in given.describe()


def test_a_misspelt_setting_is_refused():
    with pytest.raises(ConfigError, match="STREAMOPS_CLI_TOKN"):
        streamops.Client(environ={"STREAMOPS_CLI_TOKN": "x"})
