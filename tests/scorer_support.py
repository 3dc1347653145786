"""Helpers for scorer tests: topics with a published, deployed model, a scorer process, and the
scorer's runner in-process over stand-ins for the Kafka clients (decode-and-handle path only)."""

from __future__ import annotations

import dataclasses
import uuid
from pathlib import Path
from typing import Any

import onnx
from prometheus_client import CollectorRegistry

from services.common import deployment_verifier, serde, signing
from services.common.deadletter import DeadLetterWriter
from services.common.metrics import StandardMetrics
from services.common.runner import Runner, RunnerConfig
from services.common.topic_decoder import TopicDecoder
from services.common.topics import TopicNamer
from services.scorer.scoring import ScoringHandler
from services.trainer.dataset import credit_rows
from tests.kafka_support import ServiceProcess, make_topics, produce
from tests.model_factory import credit_content, keypair, published

LOGICAL = ["events", "predictions", "models", "deployments", "deadletter", "review"]


@dataclasses.dataclass
class ScorerWorld:
    """Topics under a unique prefix, trusted keys (a model key in `keys_dir`, a registry key in
    `keys_dir/registry`), and helpers to publish and produce."""

    bootstrap: str
    prefix: str
    keys_dir: Path
    log_dir: Path

    def __post_init__(self) -> None:
        self.namer = make_topics(self.bootstrap, self.prefix, LOGICAL)
        self.key = keypair(self.keys_dir)
        self.registry_keys_dir = self.keys_dir / "registry"
        self.registry_key = keypair(self.registry_keys_dir)

    def key_flags(self) -> dict[str, str]:
        """Settings that make a scorer or drift process trust this world's keys."""
        return {
            "trusted_keys_dir": str(self.keys_dir),
            "deployment_keys_dir": str(self.registry_keys_dir),
        }

    def publish(self, *records: dict[str, Any]) -> None:
        """Put ModelPublished records on the models topic."""
        produce(
            self.bootstrap,
            self.namer.models,
            [(r["content"]["name"], serde.encode("ModelPublished", r)) for r in records],
        )

    def deploy(self, record: dict[str, Any], key: signing.SigningKey | None = None) -> None:
        """Put a Deployment record on the deployments topic, signed as the registry signs it
        (with the world's registry key unless another is given)."""
        self.deploy_as_is(deployment_verifier.sign(record, key or self.registry_key))

    def deploy_as_is(self, record: dict[str, Any]) -> None:
        """Put a Deployment record on the deployments topic as it is (signed or not)."""
        produce(
            self.bootstrap,
            self.namer.deployments,
            [(record["name"], serde.encode("Deployment", record))],
        )

    def events(
        self,
        n: int,
        deployment: str = "credit",
        start: int = 0,
        seed: int = 5,
    ) -> list[str]:
        """Produce n credit events; returns their association ids."""
        ids, items = [], []
        for i, (features, _label) in enumerate(credit_rows(n, seed=seed), start):
            aid = f"{self.prefix}{i}"
            ids.append(aid)
            items.append(
                (
                    aid,
                    serde.encode(
                        "FeatureEvent",
                        {
                            "association_id": aid,
                            "deployment": deployment,
                            "event_time": 1_700_000_000_000 + i,
                            "features": features,
                            "attributes": {},
                        },
                    ),
                )
            )
        produce(self.bootstrap, self.namer.events, items)
        return ids

    def scorer(
        self,
        *extra: str,
        instance: str | None = "s1",
        group: str | None = None,
        log_name: str | None = None,
    ) -> ServiceProcess:
        """A scorer process (not started); instance=None means dynamic group membership."""
        args = [
            "--kafka-bootstrap",
            self.bootstrap,
            "--topic-prefix",
            self.prefix,
            "--trusted-keys-dir",
            str(self.keys_dir),
            "--deployment-keys-dir",
            str(self.registry_keys_dir),
            "--group-id",
            group or f"{self.prefix}scorer",
            "--metrics-port",
            "0",
            *extra,
        ]
        if instance:
            args += ["--instance-id", instance]
        name = log_name or instance or "dynamic"
        return ServiceProcess("services.scorer", args, self.log_dir / f"scorer-{name}.log")


def world(bootstrap: str, prefix: str, tmp_path: Path) -> ScorerWorld:
    """A fresh scorer world in tmp_path."""
    keys = tmp_path / f"keys-{uuid.uuid4().hex[:6]}"
    keys.mkdir()
    return ScorerWorld(bootstrap, prefix, keys, tmp_path)


def v1_signed(w: ScorerWorld) -> dict[str, Any]:
    """The credit v1 model, signed with the world's key."""
    return published(credit_content(1), w.key)


class FakeMessage:
    """A consumed message as the runner reads it (no error, a create-time timestamp)."""

    def __init__(self, topic: str, offset: int, value: bytes, key: bytes | None = b"k") -> None:
        self._topic, self._offset, self._value, self._key = topic, offset, value, key

    def error(self) -> None:
        return None

    def topic(self) -> str:
        return self._topic

    def partition(self) -> int:
        return 0

    def offset(self) -> int:
        return self._offset

    def value(self) -> bytes:
        return self._value

    def key(self) -> bytes | None:
        return self._key

    def timestamp(self) -> tuple[int, int]:
        return (1, 1_700_000_000_000)


class RecordingProducer:
    """Keeps what the runner produces as (topic, key, value); every delivery succeeds."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, Any, bytes]] = []

    def produce(self, topic, value, key=None, headers=None, on_delivery=None) -> None:
        self.sent.append((topic, key, value))

    def poll(self, _timeout: float) -> int:
        return 0

    def flush(self, _timeout: float) -> int:
        return 0


class NullConsumer:
    """Accepts commits."""

    def commit(self, offsets=None, asynchronous=True) -> None:
        return None


@dataclasses.dataclass
class InProcessScorer:
    """The scorer's Runner, TopicDecoder and ScoringHandler, wired as `services.scorer.app` does."""

    namer: TopicNamer
    handler: ScoringHandler
    runner: Runner
    producer: RecordingProducer
    registry: CollectorRegistry
    offset: int = 0

    def feed(self, values: list[bytes]) -> list[tuple[str, Any, bytes]]:
        """Run one batch of raw `events` values; returns what it produced."""
        before = len(self.producer.sent)
        messages = []
        for value in values:
            messages.append(FakeMessage(self.namer.events, self.offset, value))
            self.offset += 1
        self.runner.process(messages)
        return self.producer.sent[before:]


def in_process_scorer(snapshot: Any, prefix: str = "t.", attempts: int = 3) -> InProcessScorer:
    """An in-process scorer serving `snapshot` (a callable returning a model store Snapshot)."""
    namer = TopicNamer(prefix)
    handler = ScoringHandler(snapshot, namer.predictions, namer.review, serde.encode)
    producer = RecordingProducer()
    registry = CollectorRegistry()
    runner = Runner(
        RunnerConfig(service="scorer", topics=(namer.events,), handler_attempts=attempts),
        NullConsumer(),
        producer,
        TopicDecoder(namer),
        handler,
        DeadLetterWriter(namer.deadletter, "scorer", serde.encode),
        StandardMetrics(registry, "scorer"),
    )
    return InProcessScorer(namer, handler, runner, producer, registry)


def variant(onnx_bytes: bytes, n: int) -> bytes:
    """The same model with a different doc string: new bytes, new model id, same predictions."""
    model = onnx.load_from_string(onnx_bytes)
    model.doc_string = f"variant {n}"
    return model.SerializeToString()


def rss_mb(pid: int) -> float:
    """A process's resident set (MB)."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0
