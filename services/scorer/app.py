"""Wires the scorer: control-topic replay into the model store, the runner over `events`.

At start the scorer replays `models` and `deployments` to the end before it consumes a single
event, then keeps following them on a background thread; a new Deployment record swaps the
serving models between two batches. A Deployment is applied only when the registry's key signed
it and its revision is the current one plus one (the first seen of a deployment at any
revision); any other is dead-lettered and the revision in force keeps serving. Delivery is
at-least-once by default, or exactly-once with Kafka transactions
(`processing_guarantee=exactly_once`).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, Producer
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from services.common import serde, signing
from services.common.deadletter import DeadLetterWriter
from services.common.deployment_revisions import RevisionGate
from services.common.deployment_verifier import DeploymentVerifier
from services.common.kafka_config import KafkaConfig
from services.common.metrics import StandardMetrics, serve_metrics
from services.common.model_verifier import ModelVerifier
from services.common.runner import Runner, RunnerConfig
from services.common.topic_decoder import TopicDecoder
from services.common.topic_follower import FollowerDeadLetters, TopicFollower
from services.common.topics import TopicNamer
from services.common.transactional_runner import TransactionalRunner
from services.scorer.config import ScorerSettings
from services.scorer.inference import LoadedModel, load_model
from services.scorer.model_probe import ProbeLimits
from services.scorer.model_store import ModelStore, is_external
from services.scorer.scoring import ScoringHandler

log = logging.getLogger(__name__)

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.015, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


class ScorerMetrics:
    """Scorer-specific series; labels are deployments, versions and roles (bounded sets)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.predictions = Counter(
            "streamops_scorer_predictions_total",
            "Predictions produced.",
            ["deployment", "version", "role"],
            registry=registry,
        )
        self.latency = Histogram(
            "streamops_scorer_latency_seconds",
            "Event time to prediction produced.",
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.model_load = Histogram(
            "streamops_scorer_model_load_seconds",
            "Guard check and session creation per model.",
            registry=registry,
        )
        self.serving = Gauge(
            "streamops_scorer_serving_version",
            "Champion version being served.",
            ["deployment"],
            registry=registry,
        )
        self.rejected = Counter(
            "streamops_scorer_models_rejected_total",
            "Model records refused, by reason.",
            ["reason"],
            registry=registry,
        )
        self.challenger_failures = Counter(
            "streamops_scorer_challenger_failures_total",
            "Batches a shadow challenger failed on (its rows skipped, the champion's served).",
            ["deployment"],
            registry=registry,
        )
        self.pending = Gauge(
            "streamops_scorer_deployments_pending",
            "Deployments held until the models they reference arrive.",
            registry=registry,
        )
        self.external_skipped = Counter(
            "streamops_scorer_external_skipped_total",
            "Events of external deployments skipped (the user's service reports predictions).",
            ["deployment"],
            registry=registry,
        )

    def skipped(self, deployment: str, events: int) -> None:
        """Count events of an external deployment that were not scored here."""
        self.external_skipped.labels(deployment).inc(events)

    def challenger_failed(self, deployment: str) -> None:
        """Count one batch a shadow challenger of `deployment` failed on."""
        self.challenger_failures.labels(deployment).inc()

    def observe(self, model: LoadedModel, role: str, rows: int, event_times: list[int]) -> None:
        """Count a model's predictions and their end-to-end latency."""
        self.predictions.labels(model.name, str(model.version), role).inc(rows)
        now = time.time()
        if role != "challenger":
            for t in event_times:
                self.latency.observe(max(0.0, now - t / 1000))


def _instance_id(settings: ScorerSettings) -> str:
    return settings.instance_id or f"{socket.gethostname()}-{os.getpid()}"


def build_store(settings: ScorerSettings, metrics: ScorerMetrics) -> ModelStore:
    """A model store trusting the configured public keys."""
    keys_dir = Path(settings.trusted_keys_dir or Path(settings.var_dir) / "keys")
    trusted = signing.required_public_keys(
        keys_dir,
        f"no trusted public keys in {keys_dir}; create a key pair with "
        "`streamops keys init` or set STREAMOPS_SCORER_TRUSTED_KEYS_DIR",
    )

    probe = ProbeLimits(
        memory_bytes=settings.probe_memory_mb << 20, timeout_s=settings.probe_timeout_s
    )

    def load(content: Any) -> LoadedModel:
        model = load_model(content, probe=probe)
        metrics.model_load.observe(model.load_seconds)
        return model

    store = ModelStore(
        ModelVerifier(trusted), load, lambda d, status: _report(store, metrics, d, status)
    )
    return store


def _report(store: ModelStore, metrics: ScorerMetrics, record: Any, status: str) -> None:
    """Log and count what became of a Deployment record (at arrival, or once its models did)."""
    metrics.pending.set(len(store.pending()))
    if status == "applied" and is_external(record):
        metrics.serving.remove(record["name"])  # nothing of it is served here
        log.info(
            "deployment %s r%s: external (the user's service scores it), its events skipped",
            record["name"],
            record["revision"],
        )
    elif status == "applied":
        version = record["champion"]["version"]
        metrics.serving.labels(record["name"]).set(version)
        log.info(
            "deployment %s r%s: champion %s v%s",
            record["name"],
            record["revision"],
            record["champion"]["model_name"],
            version,
        )
    elif status.startswith("rejected:"):
        metrics.rejected.labels(status.split(":", 1)[1]).inc()


def _apply_control(
    store: ModelStore,
    namer: TopicNamer,
    metrics: ScorerMetrics,
    verify_deployment: DeploymentVerifier,
    revisions: RevisionGate,
):
    """The follower's apply: models to the store; deployments verified (signature, then
    revision) first, a refusal raised as PoisonMessage for the follower to dead-letter."""

    def deploy(record: Any) -> None:
        _report(store, metrics, record, store.on_deployment(record))

    def apply(topic: str, record: dict[str, Any]) -> None:
        if topic == namer.models:
            status = store.on_model(record)
            if status.startswith("rejected:"):
                metrics.rejected.labels(status.split(":", 1)[1]).inc()
        else:
            revisions.admit(verify_deployment(record), deploy)

    return apply


def run(settings: ScorerSettings, stop: threading.Event) -> None:
    """Replay control topics, then score events until `stop` is set."""
    registry = CollectorRegistry()
    standard = StandardMetrics(registry, "scorer")
    metrics = ScorerMetrics(registry)
    serve_metrics(registry, settings.metrics_port, settings.metrics_host)
    namer = TopicNamer(settings.topic_prefix)
    kafka = KafkaConfig.from_settings(settings, f"scorer-{_instance_id(settings)}")
    decoder = TopicDecoder(namer)
    store = build_store(settings, metrics)
    verify_deployment = DeploymentVerifier.from_dir(settings.deployment_keys())

    follower = TopicFollower(
        kafka.consumer(f"{settings.group_id}-control"),
        [namer.models, namer.deployments],
        decoder,
        _apply_control(store, namer, metrics, verify_deployment, RevisionGate()),
        dead_letter=FollowerDeadLetters.own(kafka.producer(), namer.deadletter, "scorer", standard),
    ).start()
    follower.wait_ready(settings.replay_timeout_s)
    log.info(
        "control replay done: %d deployments, %d models loaded, %d deployments held",
        len(store.snapshot().deployments),
        len(store.snapshot().models),
        len(store.pending()),
    )

    consumer_conf = kafka.consumer(
        settings.group_id, max_poll_interval_ms=settings.max_poll_interval_ms
    )
    if settings.instance_id:
        consumer_conf["group.instance.id"] = settings.instance_id
    exactly_once = settings.processing_guarantee == "exactly_once"
    tx_id = f"{settings.group_id}-{_instance_id(settings)}"
    # Only failed deliveries are reported: the runner flushes once per commit interval and
    # counts what was produced since then.
    transactions = (
        {"transactional_id": tx_id, "transaction_timeout_ms": settings.transaction_timeout_ms}
        if exactly_once
        else {}
    )
    producer_conf = kafka.producer(
        delivery_report_only_error=True, linger_ms=settings.linger_ms, **transactions
    )
    runner_cls = TransactionalRunner if exactly_once else Runner
    runner = runner_cls(
        RunnerConfig(
            service="scorer",
            topics=(namer.events,),
            batch_size=settings.batch_size,
            max_wait_s=settings.max_wait_ms / 1000,
            commit_interval_s=settings.commit_interval_ms / 1000,
            max_handle_s=0.8 * settings.max_poll_interval_ms / 1000,
            transaction_timeout_s=settings.transaction_timeout_ms / 1000,
        ),
        Consumer(consumer_conf),
        Producer(producer_conf),
        decoder,
        ScoringHandler(
            store.snapshot,
            namer.predictions,
            namer.review,
            serde.encode,
            metrics.observe,
            metrics.challenger_failed,
            metrics.skipped,
        ),
        DeadLetterWriter(namer.deadletter, "scorer", serde.encode),
        standard,
    )
    try:
        runner.run(stop)
    finally:
        follower.stop()
