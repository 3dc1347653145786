"""`streamops.Client` registry reads and delivery accounting, without network: the registry API
behind httpx's MockTransport, the producer behind a stand-in that reports like librdkafka."""

from __future__ import annotations

import doctest
import importlib
from typing import Any

import httpx
import pytest
import streamops
from confluent_kafka import KafkaError

from services.client import client as client_module
from services.client import registry as registry_module
from services.client import sender as sender_module
from services.client.records import event_message
from services.client.registry import RegistryReader
from services.client.sender import Sender

pytestmark = pytest.mark.unit

CHAMPION = {"model_name": "fraud", "model_id": "f" * 64, "version": 2}
MODELS = [{"name": "fraud", "versions": [1, 2], "latest": {"version": 2}}]


def registry_answers(calls: list[str]):
    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.raw_path.decode())
        if request.headers.get("authorization") != "Bearer tok":
            return httpx.Response(
                401, json={"error": "unauthorized", "message": "reads need a token"}
            )
        path = request.url.path
        if path == "/models":
            return httpx.Response(200, json=MODELS)
        if path == "/models/fraud":
            return httpx.Response(
                200, json={"name": "fraud", "versions": [{"version": 1}, {"version": 2}]}
            )
        if path.startswith("/models/fraud/versions/"):
            return httpx.Response(
                200, json={"name": "fraud", "version": int(path.rsplit("/", 1)[1])}
            )
        if path == "/deployments":
            return httpx.Response(200, json=[{"name": "fraud", "champion": CHAMPION}])
        if path == "/deployments/fraud":
            return httpx.Response(
                200, json={"name": "fraud", "champion": CHAMPION, "external": True}
            )
        if path == "/deployments/credit":
            return httpx.Response(
                200, json={"name": "credit", "champion": CHAMPION, "external": False}
            )
        return httpx.Response(
            404, json={"error": "not_found", "message": f"{path} is not in the registry"}
        )

    return handler


@pytest.fixture()
def calls(monkeypatch) -> list[str]:
    seen: list[str] = []
    transport = httpx.MockTransport(registry_answers(seen))

    class Reader(RegistryReader):
        def __init__(self, url: str, token: Any, timeout_s: float = 10.0) -> None:
            super().__init__(url, token, timeout_s, transport=transport)

    monkeypatch.setattr(client_module, "RegistryReader", Reader)
    return seen


def test_registry_reads(calls):
    client = streamops.Client(registry_url="http://registry.test", token="tok", environ={})
    assert client.models() == MODELS
    assert client.model("fraud") == {"name": "fraud", "version": 2}  # the latest
    assert client.model("fraud", 1) == {"name": "fraud", "version": 1}
    assert client.deployments()[0]["champion"] == CHAMPION
    assert client.deployment("fraud")["external"] is True
    assert "/models/fraud/versions/2" in calls


def test_the_champion_is_read_once_and_must_be_external(calls):
    client = streamops.Client(registry_url="http://registry.test", token="tok", environ={})
    ref = client.champion("fraud")
    assert ref == streamops.ModelRef("fraud", 2, "f" * 64)
    assert client.champion("fraud") is ref and calls.count("/deployments/fraud") == 1
    client.champion("fraud", refresh=True)
    assert calls.count("/deployments/fraud") == 2
    with pytest.raises(streamops.NotExternal, match="served by the scorer.*model="):
        client.champion("credit")


def test_report_prediction_looks_the_champion_up(calls, monkeypatch):
    sent: list[tuple[str, Any]] = []

    class Recorder:
        def __init__(self, conf: dict[str, Any]) -> None:
            pass

        def send(self, topic: str, message: Any) -> None:
            sent.append((topic, message))

    monkeypatch.setattr(client_module, "Sender", Recorder)
    client = streamops.Client(registry_url="http://registry.test", token="tok", environ={})
    client.report_prediction("fraud", "tx-1", {"amount": 3.0}, "1")
    client.report_prediction("fraud", "tx-2", {"amount": 4.0}, "0")
    assert calls.count("/deployments/fraud") == 1 and len(sent) == 4
    with pytest.raises(streamops.NotExternal):
        client.report_prediction("credit", "c-1", {"amount": 4.0}, "0")
    assert len(sent) == 4


@pytest.mark.parametrize(
    ("token", "name", "error", "says"),
    [
        ("tok", "nope", streamops.ApiNotFound, "404: /deployments/nope is not in the registry"),
        ("", "fraud", streamops.ApiUnauthorized, "pass token= or set STREAMOPS_CLI_TOKEN"),
        ("wrong", "fraud", streamops.ApiUnauthorized, "401: reads need a token"),
    ],
)
def test_registry_refusals_say_what_to_do(calls, token, name, error, says):
    client = streamops.Client(registry_url="http://registry.test", token=token, environ={})
    with pytest.raises(error, match=says) as info:
        client.deployment(name)
    assert info.value.status in (401, 404)


def test_a_registry_that_does_not_answer_says_how_to_point_at_it(monkeypatch):
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    reader = RegistryReader(
        "http://nowhere.test",
        streamops.Client(environ={}).settings.token,
        transport=httpx.MockTransport(handler),
    )
    with pytest.raises(streamops.ApiUnreachable) as info:
        reader.models()
    message = str(info.value)
    assert "http://nowhere.test is not reachable" in message
    assert "python -m services.registry" in message
    assert "registry_url= / STREAMOPS_CLI_REGISTRY_URL" in message
    assert info.value.status is None


def test_names_are_escaped_in_paths(calls):
    client = streamops.Client(registry_url="http://registry.test", token="tok", environ={})
    with pytest.raises(streamops.ApiNotFound):
        client.deployment("a/b?c")
    assert calls[-1] == "/deployments/a%2Fb%3Fc"


# -- delivery accounting -----------------------------------------------------------------------


class FakeMessage:
    def __init__(self, topic: str, key: str) -> None:
        self._topic, self._key = topic, key

    def topic(self) -> str:
        return self._topic

    def key(self) -> bytes:
        return self._key.encode()


class FakeProducer:
    """Reports like librdkafka: acks, failures, and what a flush timeout leaves behind."""

    def __init__(self, conf: dict[str, Any]) -> None:
        self.conf = conf
        self.queued: list[tuple[str, str, Any]] = []
        self.outcomes: dict[str, KafkaError | None] = {}  # key -> report on flush
        self.stuck: set[str] = set()  # keys still queued when flush times out
        self.ready: list[tuple[Any, KafkaError | None, FakeMessage]] = []

    def produce(self, topic, value, key=None, headers=None, on_delivery=None) -> None:
        self.queued.append((topic, key, on_delivery))

    def poll(self, _timeout: float = 0) -> int:
        ready, self.ready = self.ready, []
        for callback, err, msg in ready:
            callback(err, msg)
        return len(ready)

    def flush(self, _timeout: float = 0) -> int:
        left = []
        for topic, key, callback in self.queued:
            if key in self.stuck:
                left.append((topic, key, callback))
            else:
                callback(self.outcomes.get(key), FakeMessage(topic, key))
        self.queued = left
        return len(left)

    def purge(self, in_queue: bool = True, in_flight: bool = True, blocking: bool = True) -> None:
        for topic, key, callback in self.queued:
            self.ready.append(
                (callback, KafkaError(KafkaError._PURGE_QUEUE), FakeMessage(topic, key))
            )
        self.queued = []


@pytest.fixture()
def producer(monkeypatch) -> FakeProducer:
    made: list[FakeProducer] = []

    def factory(conf: dict[str, Any]) -> FakeProducer:
        made.append(FakeProducer(conf))
        return made[-1]

    monkeypatch.setattr(sender_module, "Producer", factory)
    sender = Sender({"bootstrap.servers": "b:1"})
    made[0].sender = sender
    return made[0]


def _send(producer: FakeProducer, *keys: str) -> None:
    for key in keys:
        producer.sender.send("u.events", event_message("d", {"x": 1.0}, key))


def test_flush_lists_failed_and_unknown_deliveries(producer):
    _send(producer, "ok-1", "gone", "maybe", "ok-2")
    producer.outcomes = {
        "gone": KafkaError(KafkaError.TOPIC_AUTHORIZATION_FAILED),
        "maybe": KafkaError(KafkaError._MSG_TIMED_OUT),
    }
    with pytest.raises(streamops.DeliveryError) as info:
        producer.sender.flush(1)
    error = info.value
    assert [(u.key, u.outcome) for u in error.undelivered] == [
        ("gone", "failed"),
        ("maybe", "unknown"),
    ]
    assert error.acked == 2 and "2 of 4 messages not delivered" in str(error)
    producer.sender.flush(1)  # reported once: the next flush starts afresh


def test_a_flush_timeout_purges_and_reports_what_was_left(producer):
    _send(producer, "sent", "stuck-1", "stuck-2")
    producer.stuck = {"stuck-1", "stuck-2"}
    producer.sender._on_error(KafkaError(KafkaError._ALL_BROKERS_DOWN, "all brokers down"))
    with pytest.raises(streamops.DeliveryError) as info:
        producer.sender.flush(2)
    error = info.value
    assert [(u.key, u.outcome) for u in error.undelivered] == [
        ("stuck-1", "failed"),
        ("stuck-2", "failed"),
    ]
    assert "no acknowledgement from b:1 within 2 s" in str(error)
    assert "all brokers down" in str(error)
    assert producer.queued == []  # nothing left to land unannounced later


def test_the_clients_producer_is_idempotent_and_logs_to_python(monkeypatch):
    made: list[FakeProducer] = []
    monkeypatch.setattr(
        sender_module, "Producer", lambda conf: made.append(FakeProducer(conf)) or made[-1]
    )
    client = streamops.Client(bootstrap="b:2", environ={})
    client.send_event("credit", {"x": 1.0}, association_id="a-1")
    [producer] = made
    assert producer.conf["bootstrap.servers"] == "b:2"
    assert producer.conf["enable.idempotence"] is True and producer.conf["acks"] == "all"
    assert producer.conf["client.id"] == "streamops-client"
    assert producer.conf["logger"].name == "streamops.client"
    assert [(t, k) for t, k, _ in producer.queued] == [("streamops.events", "a-1")]
    client.close()


MODULES = [
    "services.client.errors",
    "services.client.records",
    "services.client.client",
    "services.common.cli_settings",
    "services.common.json_input",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name))
    assert result.attempted > 0 and result.failed == 0


def test_every_public_function_is_typed_and_documented():
    import inspect

    for module in (client_module, registry_module, sender_module):
        for name, obj in vars(module).items():
            if name.startswith("_") or getattr(obj, "__module__", None) != module.__name__:
                continue
            members = [obj, *vars(obj).values()] if inspect.isclass(obj) else [obj]
            for member in members:
                if inspect.isfunction(member) and not member.__name__.startswith("_"):
                    assert member.__doc__, f"{module.__name__}.{member.__qualname__}"
                    hints = inspect.get_annotations(member)
                    assert "return" in hints, f"{member.__qualname__} has no return type"
