"""Wires the registry: Redis view, topic follower, transactional publisher, HTTP API.

At start the registry replays `models`, `deployments`, `governance`, `drift`, `breaches` and
`retrain_outcomes` into the view before it serves, then keeps following them. A tail sampler
reads bounded samples of `events`, `predictions` and `deadletter` for the dashboard's live
figures (kept in memory).
It is the only writer of `deployments` and `governance`; both records of an approval go out in
one Kafka transaction, so a crash between them cannot leave a revision without its audit event
(or the reverse). Every Deployment it writes is signed with its own key (`deployment_keys_dir`,
made at first start), which scorers and drift verify.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any

import redis
import uvicorn
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from prometheus_client import CollectorRegistry, Counter

from services.common import deployment_verifier, local_tokens, serde, signing
from services.common.admin import ensure_topics
from services.common.errors import FatalError, RetryableError
from services.common.kafka_config import KafkaConfig
from services.common.metrics import StandardMetrics, serve_metrics
from services.common.model_verifier import ModelVerifier
from services.common.settings import Secret
from services.common.topic_decoder import TopicDecoder
from services.common.topic_follower import FollowerDeadLetters, TopicFollower
from services.common.topics import TopicNamer
from services.registry.api import ApiMetrics, create_app
from services.registry.config import RegistrySettings
from services.registry.governance import Governor, Outgoing, Refused
from services.registry.ingest import Ingest
from services.registry.live import LiveStats
from services.registry.release_controller import ControllerThread, ReleaseController
from services.registry.roles import TokenTable
from services.registry.sampler import SAMPLED, TailSampler
from services.registry.view import RegistryView

log = logging.getLogger(__name__)

FOLLOWED = ["models", "deployments", "governance", "drift", "breaches", "retrain_outcomes"]


class KafkaPublisher:
    """Writes a governance step's records in one transaction (all delivered or none), every
    Deployment signed with the registry's key."""

    def __init__(
        self, producer_conf: dict[str, Any], namer: TopicNamer, signer: signing.SigningKey
    ) -> None:
        self._producer = Producer(producer_conf)
        self._namer = namer
        self._signer = signer
        self._open = False  # a transaction begun and neither committed nor aborted
        try:
            self._producer.init_transactions(30)
        except KafkaException as exc:
            raise RetryableError(f"cannot start the registry's Kafka transactions: {exc}") from None

    def publish(self, records: list[Outgoing]) -> None:
        """Produce and commit every record, or abort and raise."""
        # Encoding first: a record the schema refuses is the request's fault (Refused), and it
        # is found before a transaction exists that it could leave open.
        encoded = [
            (logical, key, name, _encode(name, self._signed(name, record)))
            for logical, key, name, record in records
        ]
        if self._open:
            self._abort()  # an earlier abort failed: the producer is still in its transaction
        try:
            self._producer.begin_transaction()
            self._open = True
            for logical, key, name, value in encoded:
                self._producer.produce(
                    self._namer.name(logical),
                    value,
                    key,
                    headers=[serde.fingerprint_header(name)],
                )
            self._producer.commit_transaction(30)
            self._open = False
        except KafkaException as exc:
            error = exc.args[0] if exc.args else None
            if error is not None and error.fatal():
                raise FatalError(f"registry producer fenced or failed: {exc}") from None
            self._abort()
            raise RetryableError(f"Kafka did not accept the governance write: {exc}") from None
        except BaseException:
            self._abort()  # whatever failed, the next write must not find this one open
            raise

    def _signed(self, name: str, record: dict[str, Any]) -> dict[str, Any]:
        if name != "Deployment":
            return record
        return deployment_verifier.sign(record, self._signer)

    def _abort(self) -> None:
        if not self._open:
            return
        try:
            self._producer.abort_transaction(30)
            self._open = False
        except KafkaException as exc:
            error = exc.args[0] if exc.args else None
            if error is not None and error.fatal():
                raise FatalError(f"registry producer fenced or failed: {exc}") from None
            log.warning("aborting a failed governance write failed (retried on the next write)")

    def close(self) -> None:
        """Flush whatever is left."""
        self._producer.flush(10)


def _encode(name: str, record: dict[str, Any]) -> bytes:
    try:
        return serde.encode(name, record)
    except Exception as exc:  # fastavro's ValueError/TypeError/KeyError: the content is wrong
        raise Refused("invalid", f"the {name} record cannot be written: {exc}") from None


def trusted_keys(settings: RegistrySettings) -> dict[str, Any]:
    """The public keys model records must be signed with."""
    keys_dir = Path(settings.trusted_keys_dir or Path(settings.var_dir) / "keys")
    return signing.required_public_keys(
        keys_dir,
        f"no trusted public keys in {keys_dir}; create a key pair with "
        "`streamops keys init` or set STREAMOPS_REGISTRY_TRUSTED_KEYS_DIR",
    )


def deployment_signer(settings: RegistrySettings) -> signing.SigningKey:
    """The registry's Deployment signing key, made at first start (with its .pub beside it)."""
    folder = settings.deployment_keys()
    key, made = signing.ensure_keypair(folder)
    if made:
        log.info(
            "made the registry's Deployment signing key %s in %s: scorers and drift trust "
            "%s/%s.pub (their deployment_keys_dir)",
            key.key_id,
            folder,
            folder,
            key.key_id,
        )
    else:
        log.info("Deployment records are signed with key %s from %s", key.key_id, folder)
    return key


def redis_client(settings: RegistrySettings) -> redis.Redis:
    """A client for the configured Redis."""
    return redis.Redis(**settings.redis_options(), socket_timeout=5)


def _wait_for_leaders(consumer_conf: dict[str, Any], topics: list[str], timeout_s: float) -> None:
    """Block until every partition answers a watermark query (fresh topics need a moment)."""
    consumer = Consumer(consumer_conf)
    deadline = time.monotonic() + timeout_s
    try:
        for topic in topics:
            meta = consumer.list_topics(topic, timeout=10).topics[topic]
            for partition in meta.partitions:
                while True:
                    try:
                        consumer.get_watermark_offsets(TopicPartition(topic, partition), 5)
                        break
                    except KafkaException as exc:
                        if time.monotonic() > deadline:
                            raise RetryableError(
                                f"{topic}[{partition}] has no leader: {exc}"
                            ) from None
                        time.sleep(0.2)
    finally:
        consumer.close()


def api_tokens(settings: RegistrySettings) -> Secret:
    """The `tokens` setting, or the local stack's tokens in var/ when it is empty."""
    if settings.tokens:
        return settings.tokens
    local = local_tokens.read_registry(settings.var_dir)
    if local:
        log.info("API tokens from %s", local_tokens.registry_path(settings.var_dir))
    return Secret(local or "")


class Registry:
    """The registry's parts, started and stopped together (embeddable in tests)."""

    def __init__(self, settings: RegistrySettings, metrics: CollectorRegistry | None = None):
        self.settings = settings
        self.metrics = metrics or CollectorRegistry()
        self.namer = TopicNamer(settings.topic_prefix)
        self.kafka = KafkaConfig.from_settings(settings, "streamops-registry")
        self.view = RegistryView(
            redis_client(settings),
            settings.topic_prefix,
            settings.drift_reports_kept,
            settings.breaches_kept,
        )
        self.live = LiveStats()
        self.tokens = TokenTable.parse(api_tokens(settings))
        self.standard = StandardMetrics(self.metrics, "registry")
        self.rejected = Counter(
            "streamops_registry_models_rejected_total",
            "Model records refused, by reason.",
            ["reason"],
            registry=self.metrics,
        )
        self.ingest = Ingest(
            self.view,
            ModelVerifier(trusted_keys(settings)),
            self.namer,
            lambda reason: self.rejected.labels(reason).inc(),
        )
        self.signer = deployment_signer(settings)  # before any work: fail fast
        self.follower: TopicFollower | None = None
        self.sampler: TailSampler | None = None
        self.publisher: KafkaPublisher | None = None
        self.controller: ControllerThread | None = None
        self.decisions = Counter(
            "streamops_registry_release_decisions_total",
            "Change requests the release controller filed, by decision.",
            ["decision"],
            registry=self.metrics,
        )
        self.app: Any = None

    def _apply(self, topic: str, record: dict[str, Any]) -> None:
        self.standard.consumed.labels("registry", topic).inc()
        self.ingest(topic, record)  # a Redis outage raises RetryableError: the follower waits

    def start(self) -> Registry:
        """Create missing topics, replay them into the view, open the publisher, build the app."""
        try:
            self.view.r.ping()
        except redis.RedisError as exc:
            raise RetryableError(
                f"Redis at {self.settings.redis_host}:"
                f"{self.settings.redis_port} does not answer: {exc}"
            ) from None
        sampled = list(SAMPLED) if self.settings.sample_per_partition else []
        ensure_topics(
            self.kafka.admin(), self.namer, only=[*FOLLOWED, "deadletter", "retrain", *sampled]
        )
        _wait_for_leaders(
            self.kafka.consumer("streamops-registry-probe"),
            [self.namer.name(t) for t in FOLLOWED],
            self.settings.replay_timeout_s,
        )
        self.follower = TopicFollower(
            self.kafka.consumer("streamops-registry-follower"),
            [self.namer.name(t) for t in FOLLOWED],
            TopicDecoder(self.namer),
            self._apply,
            self.ingest.on_poison,
            FollowerDeadLetters.own(
                self.kafka.producer(), self.namer.deadletter, "registry", self.standard
            ),
        ).start()
        self.follower.wait_ready(self.settings.replay_timeout_s)
        log.info("replay done: %s", self.view.sizes())
        if self.settings.sample_per_partition:
            self.sampler = TailSampler(
                self.kafka.consumer("streamops-registry-sampler"),
                self.namer,
                self.live,
                lambda: set(self.view.deployment_names()),
                self.settings.sample_per_partition,
                self.settings.sample_interval_s,
            ).start()
        self.publisher = KafkaPublisher(
            self.kafka.producer(transactional_id=self.settings.transactional_id),
            self.namer,
            self.signer,
        )
        governor = Governor(self.view, self.publisher)
        if self.settings.release_interval_s:
            controller = ReleaseController(
                self.view, governor, lambda decision: self.decisions.labels(decision).inc()
            )
            self.controller = ControllerThread(controller, self.settings.release_interval_s)
            self.controller.start()
        if not len(self.tokens) and not self.settings.public_reads:
            log.warning("no tokens configured and public_reads off: the API will refuse everyone")
        self.app = create_app(
            self.view,
            governor,
            self.tokens,
            self.settings.public_reads,
            ApiMetrics(self.metrics),
            self.health,
            self.live,
        )
        return self

    def health(self) -> dict[str, Any]:
        """Redis answers and the follower thread is alive."""
        try:
            redis_ok = bool(self.view.r.ping())
        except redis.RedisError:
            redis_ok = False
        following = self.follower is not None and self.follower._thread.is_alive()
        stalled = self.follower is not None and self.follower.applier.stalled
        return {
            "ok": redis_ok and following and not stalled,
            "redis": redis_ok,
            "following": following,
            "stalled": stalled,
        }

    def close(self) -> None:
        """Stop following and flush the publisher."""
        if self.controller is not None:
            self.controller.stop()
        if self.sampler is not None:
            self.sampler.stop()
        if self.follower is not None:
            self.follower.stop()
        if self.publisher is not None:
            self.publisher.close()


def run(settings: RegistrySettings, stop: threading.Event) -> None:
    """Serve the API on http_host:http_port until `stop` is set."""
    try:
        registry = Registry(settings).start()
    except RetryableError as exc:
        raise FatalError(f"cannot start: {exc}") from None  # the supervisor restarts us
    serve_metrics(registry.metrics, settings.metrics_port, settings.metrics_host)
    server = uvicorn.Server(
        uvicorn.Config(
            registry.app, host=settings.http_host, port=settings.http_port, log_level="warning"
        )
    )
    thread = threading.Thread(target=server.run, name="http", daemon=True)
    thread.start()
    log.info(
        "registry API on http://%s:%d (docs at /docs, dashboard at /dashboard)",
        settings.http_host,
        settings.http_port,
    )
    try:
        while not stop.wait(0.5):
            if not thread.is_alive():
                raise FatalError(f"the HTTP server stopped (port {settings.http_port} in use?)")
    finally:
        server.should_exit = True
        thread.join(10)
        registry.close()
