"""Wires the trainer: one-shot training for the CLI and the long-running retrain consumer.

Both start by replaying `models` and `deployments` into a `ModelLedger` (versions, champions,
verified contents). `train_once` then trains, signs and publishes one model and waits for the
broker's acknowledgement (`import_once` a model trained elsewhere, `describe_once` one that runs
in the user's service, known by its training data); `run` keeps the ledger following the topics
on a background thread and runs the shared at-least-once runner over `retrain` with the
`RetrainHandler`, which answers on `retrain_outcomes`.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, KafkaException, Producer
from prometheus_client import CollectorRegistry

from services.common import serde, signing
from services.common.deadletter import DeadLetterWriter
from services.common.errors import ConfigError, RetryableError
from services.common.kafka_config import KafkaConfig
from services.common.metrics import StandardMetrics, serve_metrics
from services.common.model_verifier import ModelVerifier
from services.common.record_applier import DeadLetterSink
from services.common.runner import Runner, RunnerConfig
from services.common.topic_decoder import TopicDecoder
from services.common.topic_follower import FollowerDeadLetters, TopicFollower
from services.common.topics import TopicNamer
from services.trainer.config import TrainerSettings
from services.trainer.dataset import ColumnChoices, Dataset, load_dataset
from services.trainer.gate import ChampionGate
from services.trainer.metrics import TrainerMetrics
from services.trainer.model_build import TrainOptions, build_model
from services.trainer.model_describe import describe_model, load_described
from services.trainer.model_import import import_model
from services.trainer.onnx_export import MAX_PROB_DIFF, ExportError
from services.trainer.publisher import ModelPublisher, load_signing_key, signed_record
from services.trainer.retrain import RetrainHandler
from services.trainer.stream_slice import StreamSliceReader
from services.trainer.summary import TrainingSummary, summarize
from services.trainer.validation import DataValidationError
from services.trainer.versions import ModelLedger, VersionPlan

log = logging.getLogger(__name__)

Say = Callable[[str], None]


@dataclasses.dataclass(frozen=True)
class TrainJob:
    """One training asked for on the command line: a data set or a stream slice, and a name."""

    model_name: str
    dataset: str | None = None  # csv path or builtin:credit[?...]
    label: str | None = None
    deployment: str | None = None  # with last_n: train from the stream slice
    last_n: int | None = None
    choices: ColumnChoices = ColumnChoices()  # task, categorical and dropped columns of a file
    space: dict[str, Any] | None = None  # a search space from a YAML file


def options_from(settings: TrainerSettings) -> TrainOptions:
    """Training options from the settings."""
    return TrainOptions(
        estimator=settings.estimator,
        search=settings.search,
        trials=settings.trials,
        seed=settings.seed,
        cv_folds=settings.cv_folds,
    )


def _client_id(settings: TrainerSettings) -> str:
    return f"trainer-{socket.gethostname()}-{os.getpid()}"


def trusted_keys(settings: TrainerSettings) -> dict[str, Any]:
    """Public keys from every configured directory that exists."""
    keys: dict[str, Any] = {}
    for folder in settings.public_key_dirs():
        if Path(folder).is_dir():
            keys.update(signing.load_public_keys(folder))
    return keys


def _ledger_apply(ledger: ModelLedger, namer: TopicNamer) -> Callable[[str, dict[str, Any]], None]:
    def apply(topic: str, record: dict[str, Any]) -> None:
        if topic == namer.models:
            status = ledger.add_model(record)
            if status != "verified":
                log.info("model record not trusted for lineage: %s", status)
        else:
            ledger.add_deployment(record)

    return apply


def follow_ledger(
    settings: TrainerSettings,
    kafka: KafkaConfig,
    namer: TopicNamer,
    dead_letter: DeadLetterSink | None = None,
) -> tuple[ModelLedger, TopicFollower]:
    """A ledger replayed to the end of `models` and `deployments`, still following them."""
    ledger = ModelLedger(ModelVerifier(trusted_keys(settings)))
    follower = TopicFollower(
        kafka.consumer(f"{settings.group_id}-control"),
        [namer.models, namer.deployments],
        TopicDecoder(namer),
        _ledger_apply(ledger, namer),
        dead_letter=dead_letter,
    ).start()
    try:
        follower.wait_ready(settings.replay_timeout_s)
    except BaseException:
        follower.stop()
        raise
    return ledger, follower


def slice_reader(
    settings: TrainerSettings, kafka: KafkaConfig, namer: TopicNamer
) -> StreamSliceReader:
    """A stream slice reader over the configured `events` and `actuals` topics."""
    return StreamSliceReader(
        kafka.consumer(f"{settings.group_id}-slices"),
        namer.events,
        namer.actuals,
        TopicDecoder(namer),
        max_scan=settings.slice_max_scan,
    )


def _load_file(spec: str, label: str | None, choices: ColumnChoices, say: Say) -> Dataset:
    say(f"loading {spec}")
    ds = load_dataset(spec, label=label, choices=choices)
    for column, why in ds.left_out.items():
        say(f"column {column!r} is not a feature: {why}")
    return ds


def _load(
    job: TrainJob,
    settings: TrainerSettings,
    ledger: ModelLedger,
    kafka: KafkaConfig,
    namer: TopicNamer,
    say: Say,
) -> Dataset:
    if job.dataset is not None:
        return _load_file(job.dataset, job.label, job.choices, say)
    if job.deployment is None or job.last_n is None:
        raise ConfigError("training from the stream needs a deployment and --last N")
    dep = ledger.deployment(job.deployment)
    champion = ledger.content(dep["champion"]["model_id"]) if dep else None
    specs = champion["signature_in"]["features"] if champion else None
    say(f"reading the last {job.last_n} labelled events of {job.deployment!r} from the stream")
    reader = slice_reader(settings, kafka, namer)
    return reader.read(
        job.deployment,
        job.last_n,
        feature_names=[s["name"] for s in specs] if specs else None,
        categorical=[s["name"] for s in specs if s["kind"] == "categorical"] if specs else (),
        progress=say,
        task=champion["task"] if champion else None,
    )


@dataclasses.dataclass(frozen=True)
class ImportJob:
    """A model trained elsewhere to publish: its file, reference data and trusted types."""

    model_name: str
    model_file: str
    reference: str
    label: str | None = None
    choices: ColumnChoices = ColumnChoices()
    trust: tuple[str, ...] = ()
    max_gap: float = MAX_PROB_DIFF  # largest probability (or value) gap ONNX may show


class _OneShot:
    """What a one-shot CLI run needs: signing key, topics, Kafka and the ledger at start."""

    def __init__(self, settings: TrainerSettings, say: Say) -> None:
        self.key = load_signing_key(settings.private_keys_dir())  # before any work: fail fast
        self.namer = TopicNamer(settings.topic_prefix)
        self.kafka = KafkaConfig.from_settings(settings, _client_id(settings))
        say(f"reading {self.namer.models} and {self.namer.deployments}")
        self.ledger, follower = follow_ledger(settings, self.kafka, self.namer)
        follower.stop()  # one-shot: the state at start is what versions are based on

    def publish(
        self,
        content: dict[str, Any],
        plan: VersionPlan,
        train_s: float,
        started: float,
        say: Say,
        note: str = "",
    ) -> TrainingSummary:
        """Sign and publish; the summary of what the broker acknowledged."""
        say(f"signing with key {self.key.key_id}; publishing to {self.namer.models}")
        publisher = ModelPublisher(self.kafka.producer(), self.namer.models)
        delivery = publisher.publish(signed_record(content, self.key))
        return summarize(
            content,
            outcome="published",
            parent_source=plan.parent_source,
            train_seconds=train_s,
            total_seconds=time.perf_counter() - started,
            record_bytes=delivery.size_bytes,
            location=f"{delivery.topic}[{delivery.partition}]@{delivery.offset}",
            note=note,
        )


def train_once(
    settings: TrainerSettings,
    job: TrainJob,
    say: Say = log.info,
    metrics: TrainerMetrics | None = None,
) -> TrainingSummary:
    """Train, sign and publish one model; raises DataValidationError or ExportError if refused."""
    started = time.perf_counter()
    metrics = metrics or TrainerMetrics(CollectorRegistry())
    run = _OneShot(settings, say)
    ds = _load(job, settings, run.ledger, run.kafka, run.namer, say)
    plan = run.ledger.plan(job.model_name, job.deployment)
    say(
        f"{ds.rows} rows, data {ds.version.content_hash[:12]}; training {job.model_name} "
        f"v{plan.version} ({settings.estimator}, {settings.search} search)"
    )
    try:
        built = build_model(
            ds,
            name=job.model_name,
            version=plan.version,
            parent_id=plan.parent_id,
            options=dataclasses.replace(options_from(settings), space=job.space),
        )
    except (DataValidationError, ExportError):
        metrics.outcome("refused")
        raise
    metrics.seconds.observe(time.perf_counter() - started)
    say(f"trained in {built.result.train_seconds:.1f} s")
    summary = run.publish(built.content, plan, built.result.train_seconds, started, say)
    metrics.outcome("published")
    metrics.model_bytes.observe(summary.record_bytes or 0)
    return summary


def import_once(settings: TrainerSettings, job: ImportJob, say: Say = log.info) -> TrainingSummary:
    """Import, sign and publish a model trained elsewhere; raises ImportRefused or
    DataValidationError (nothing published) when it cannot be served as it is."""
    started = time.perf_counter()
    run = _OneShot(settings, say)
    ds = _load_file(job.reference, job.label, job.choices, say)
    plan = run.ledger.plan(job.model_name, None)
    say(f"{ds.rows} reference rows; importing {job.model_file} as {job.model_name} v{plan.version}")
    imported = import_model(
        Path(job.model_file),
        ds,
        name=job.model_name,
        version=plan.version,
        parent_id=plan.parent_id,
        trust=job.trust,
        seed=settings.seed,
        max_gap=job.max_gap,
    )
    say(
        f"converted ({imported.source.fmt}, {imported.source.description}); ONNX agrees on "
        f"{imported.parity.label_agreement:.2%} of {imported.parity.rows} rows"
    )
    note = f"imported from {Path(job.model_file).name} (sha256 {imported.sha256[:16]}), not trained"
    return run.publish(imported.content, plan, 0.0, started, say, note)


@dataclasses.dataclass(frozen=True)
class DescribeJob:
    """A model that runs in the user's own service, described by its training data."""

    model_name: str
    data: str  # CSV, JSON lines or Parquet (or builtin:credit without a prediction column)
    label: str | None = None
    prediction_column: str | None = None  # the model's outputs on the data, if the user has them
    choices: ColumnChoices = ColumnChoices()


def describe_once(
    settings: TrainerSettings, job: DescribeJob, progress: Say = log.info
) -> TrainingSummary:
    """Describe, sign and publish a model without ONNX (for an external deployment); raises
    DataValidationError (nothing published) when the data cannot describe it."""
    started = time.perf_counter()
    run = _OneShot(settings, progress)
    progress(f"loading {job.data}")
    ds, predictions = load_described(job.data, job.label, job.choices, job.prediction_column)
    for column, why in ds.left_out.items():
        progress(f"column {column!r} is not a feature: {why}")
    plan = run.ledger.plan(job.model_name, None)
    progress(f"{ds.rows} rows; describing {job.model_name} v{plan.version} (no model file)")
    described = describe_model(
        ds,
        name=job.model_name,
        version=plan.version,
        parent_id=plan.parent_id,
        predictions=predictions,
    )
    note = (
        f"{described.origin} (sha256 {described.sha256[:16]}): runs in your service; prediction "
        f"baseline from the {described.predictions_from}, importances uniform"
    )
    return run.publish(described.content, plan, 0.0, started, progress, note)


def run(
    settings: TrainerSettings,
    stop: threading.Event,
    registry: CollectorRegistry | None = None,
) -> RetrainHandler:
    """Consume `retrain` until `stop` is set; returns the handler (its recent summaries)."""
    registry = registry or CollectorRegistry()
    standard = StandardMetrics(registry, "trainer")
    metrics = TrainerMetrics(registry)
    key = load_signing_key(settings.private_keys_dir())
    serve_metrics(registry, settings.metrics_port, settings.metrics_host)
    namer = TopicNamer(settings.topic_prefix)
    kafka = KafkaConfig.from_settings(settings, _client_id(settings))
    producer = Producer(kafka.producer())
    dead_letters = DeadLetterWriter(namer.deadletter, "trainer", serde.encode)
    # Only the long-running trainer dead-letters control records; a one-shot CLI run only reads.
    sink = FollowerDeadLetters.own(kafka.producer(), namer.deadletter, "trainer", standard)
    ledger, follower = follow_ledger(settings, kafka, namer, sink)
    handler = RetrainHandler(
        ledger,
        slice_reader(settings, kafka, namer),
        key,
        namer.models,
        outcomes_topic=namer.retrain_outcomes,
        options=options_from(settings),
        gate=ChampionGate(settings.gate_metric, settings.gate_margin),
        default_last_n=settings.last_n,
        metrics=metrics,
        attempts=settings.retrain_attempts,
        backoff_s=settings.retrain_backoff_s,
        # The slice reader's consumer raises the client's own errors (metadata, watermarks).
        transient=(RetryableError, KafkaException),
    )
    runner = Runner(
        RunnerConfig(service="trainer", topics=(namer.retrain,), batch_size=50, max_wait_s=0.5),
        Consumer(
            kafka.consumer(settings.group_id, max_poll_interval_ms=settings.max_poll_interval_ms)
        ),
        producer,
        TopicDecoder(namer),
        handler,
        dead_letters,
        standard,
    )
    log.info("trainer: key %s, waiting for retrain requests on %s", key.key_id, namer.retrain)
    try:
        runner.run(stop)
    finally:
        follower.stop()
    return handler
