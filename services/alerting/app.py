"""The alerting service: a faust-streaming app around the alerting engine.

One agent (concurrency 1) consumes `breaches`, another `deployments` and a third
`retrain_outcomes` (a retrain that failed or was refused becomes an alert through the breaches'
own path, and an outcome ends the retrain it answers); a timer flushes due groups into the Redis
outbox; a background task delivers from the outbox; another serves the API. Everything runs on
one event loop, so the engine is never touched concurrently.

Durability: after every breach or outcome the engine state is saved to Redis before faust may
commit its offset, and a flush saves the state and queues its notifications in one transaction.
A kill -9 therefore replays at most the records after the last commit (the engine ignores what
it has seen) and re-sends at most the notifications that were in flight (same `webhook-id`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import faust
import redis
import uvicorn
from prometheus_client import CollectorRegistry
from redis.asyncio import Redis as AsyncRedis

from services.alerting.alerting_metrics import AlertingMetrics
from services.alerting.api import create_api
from services.alerting.config import AlertingSettings
from services.alerting.delivery import Deliverer
from services.alerting.engine import Engine
from services.alerting.guarded_http import guarded_pool
from services.alerting.outbox import Entry, Store, state_key
from services.alerting.payload import encode, render
from services.alerting.retrain_policy import RetrainRequest
from services.alerting.retry_policy import RetryPolicy
from services.alerting.routing import AlertingConfig, load_config
from services.alerting.ssrf import PRODUCTION, Policy, Resolver, UnsafeDestination, check_url
from services.common import local_tokens, serde
from services.common.deadletter import DeadLetterWriter
from services.common.errors import ConfigError, PoisonMessage, Reason, RetryableError
from services.common.kafka_config import KafkaConfig
from services.common.metrics import StandardMetrics, serve_metrics
from services.common.settings import Secret
from services.common.topics import TopicNamer
from services.common.watchdog import Watchdog

log = logging.getLogger(__name__)

SERVICE = "alerting"
SHUTDOWN_LIMIT_S = 8.0  # then the process exits whatever faust still waits on (R16: <= 10 s)
REDIS_RETRY_S = 1.0
BATCH_MAX = 500  # breaches handled per state save
BATCH_WITHIN_S = 0.02


def check_receivers(config: AlertingConfig, resolver: Resolver, policy: Policy) -> None:
    """Registration-time SSRF check: every receiver's name resolves to allowed addresses only."""
    for receiver in config.receivers.values():
        try:
            check_url(receiver.url, resolver, policy)
        except UnsafeDestination as exc:
            raise ConfigError(
                f"{config.source}: receiver {receiver.name!r} points at a {exc.args[0]} address "
                f"({exc}); webhooks may only go to public addresses"
            ) from None
        except RetryableError as exc:  # DNS down now; delivery checks again at connect time
            log.warning("receiver %s: %s (checked again at delivery)", receiver.name, exc)


def api_token(settings: AlertingSettings) -> Secret:
    """The API's token: the `api_token` setting, else var/alerting/token (made at first start).

    The API never runs open; a token shorter than local_tokens.MIN_LENGTH is a ConfigError.
    """
    if settings.api_token:
        local_tokens.check(
            settings.api_token.reveal(), "the alerting api_token (STREAMOPS_ALERTING_API_TOKEN)"
        )
        return settings.api_token
    token, created = local_tokens.ensure_alerting(settings.var_dir)
    where = local_tokens.alerting_path(settings.var_dir)
    local_tokens.check(
        token,
        f"the alerting token in {where}",
        "write a longer one into it (or delete it: the next start makes one)",
    )
    log.info("API token %s %s (mode 0600)", "made into" if created else "from", where)
    return Secret(token)


def faust_credentials(settings: AlertingSettings) -> Any:
    """faust's broker credentials: the login every other service finds (kafka_config)."""
    kafka = KafkaConfig.from_settings(settings, "streamops-alerting")
    protocol = kafka.security_protocol.upper()
    if protocol == "PLAINTEXT":
        return None
    if protocol in ("SASL_PLAINTEXT", "SASL_SSL"):
        ssl_context = None
        if protocol == "SASL_SSL":
            import ssl

            ssl_context = ssl.create_default_context(cafile=kafka.ssl_ca_location or None)
        return faust.SASLCredentials(
            username=kafka.sasl_username,
            password=kafka.sasl_password.reveal(),
            mechanism=kafka.sasl_mechanism or "SCRAM-SHA-512",
            ssl_context=ssl_context,
        )
    raise ConfigError(f"kafka_security_protocol {protocol!r} is not supported by alerting")


class _QuietServer(uvicorn.Server):
    """uvicorn without its own signal handling: faust's worker owns SIGTERM."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class AlertingService:
    """The engine, its Redis store, the deliverer and the faust app, wired together."""

    def __init__(
        self,
        settings: AlertingSettings,
        *,
        policy: Policy = PRODUCTION,
        resolver: Resolver = socket.getaddrinfo,
    ) -> None:
        self.settings = settings
        self.namer = TopicNamer(settings.topic_prefix)
        if not Path(settings.config_file).exists():
            raise ConfigError(
                f"no alerting config at {settings.config_file}: copy "
                "infra/alerting/alerting.example.yaml there and set your receivers (or point "
                "STREAMOPS_ALERTING_CONFIG_FILE / --config-file at yours)"
            )
        config = load_config(settings.config_file, policy)
        check_receivers(config, resolver, policy)
        self.api_token = api_token(settings)
        self.engine = Engine(
            config,
            dashboard_url=settings.dashboard_url,
            retrain_timeout_s=settings.retrain_timeout_s,
        )
        saved = self._load_state()
        if saved is not None:
            self.engine.restore(saved)
        self.registry = CollectorRegistry()
        self.standard = StandardMetrics(self.registry, SERVICE)
        self.metrics = AlertingMetrics(self.registry)
        self.dead_letters = DeadLetterWriter(self.namer.deadletter, SERVICE, serde.encode)
        self.policy, self.resolver = policy, resolver
        self.stopping: asyncio.Event | None = None
        self._shutdown_deadline = Watchdog(SHUTDOWN_LIMIT_S)
        self._ready = asyncio.Event()  # set once the store and deliverer exist (in `serve`)
        self.app = self._faust_app()

    def _load_state(self) -> dict[str, Any] | None:
        client = redis.Redis(**self.settings.redis_options(), socket_timeout=10)
        try:
            raw = client.get(state_key(self.settings.namespace))
        except redis.RedisError as exc:
            raise ConfigError(
                f"cannot read alerting state from Redis at {self.settings.redis_host}:"
                f"{self.settings.redis_port} ({exc}); start it with `make up`"
            ) from None
        finally:
            client.close()
        if raw is None:
            log.info("no saved state: starting empty")
            return None
        log.info("continuing from saved state (%d bytes)", len(raw))
        return json.loads(raw)

    # -- faust wiring ---------------------------------------------------------------------------

    def _faust_app(self) -> faust.App:
        s = self.settings
        datadir = Path(s.var_dir) / "alerting" / s.group_id
        datadir.mkdir(parents=True, exist_ok=True)
        app = faust.App(
            s.group_id,
            broker=[f"kafka://{b.strip()}" for b in s.kafka_bootstrap.split(",")],
            broker_credentials=faust_credentials(s),
            value_serializer="raw",
            key_serializer="raw",
            web_enabled=False,
            datadir=str(datadir),
            topic_allow_declare=False,
            topic_disable_leader=True,
            consumer_auto_offset_reset="earliest",
            broker_session_timeout=s.session_timeout_s,
            broker_heartbeat_interval=min(3.0, s.session_timeout_s / 3),
            broker_commit_interval=1.0,
            producer_acks=-1,
        )
        breaches = app.topic(self.namer.breaches, key_type=bytes, value_type=bytes)
        deployments = app.topic(self.namer.deployments, key_type=bytes, value_type=bytes)
        outcomes = app.topic(self.namer.retrain_outcomes, key_type=bytes, value_type=bytes)
        self.retrain_topic = app.topic(self.namer.retrain, key_type=bytes, value_type=bytes)
        self.deadletter_topic = app.topic(self.namer.deadletter, key_type=bytes, value_type=bytes)

        @app.agent(breaches, concurrency=1)
        async def on_breaches(stream: Any) -> None:
            async for events in stream.take_events(BATCH_MAX, within=BATCH_WITHIN_S):
                await self.handle_breaches([e.message for e in events])

        @app.agent(deployments, concurrency=1)
        async def on_deployments(stream: Any) -> None:
            async for event in stream.events():
                await self.handle_deployment(event.message)

        @app.agent(outcomes, concurrency=1)
        async def on_retrain_outcomes(stream: Any) -> None:
            async for event in stream.events():
                await self.handle_retrain_outcome(event.message)

        @app.timer(interval=s.tick_s)
        async def flush() -> None:
            await self.tick()

        @app.task
        async def background() -> None:
            await self.serve()

        app.on_before_shutdown.connect(self._on_shutdown)
        return app

    def _on_shutdown(self, *_args: Any, **_kwargs: Any) -> None:
        # faust's shutdown waits on its consumer and producer; with the broker gone they never
        # answer (R16: exit within 10 s). The outbox is in Redis and offsets not committed are
        # read again at restart, so a forced exit loses nothing.
        self._shutdown_deadline.arm("shutdown (the broker does not answer)")
        if self.stopping is not None:
            self.stopping.set()

    # -- handling -------------------------------------------------------------------------------

    async def handle_breaches(self, messages: list[Any]) -> None:
        """ThresholdBreaches: ingest, maybe ask for retrains, save once; poison is dead-lettered.

        The state is saved before faust may commit these offsets (it acks a batch only when
        the agent asks for the next one).
        """
        await self._ready.wait()
        for message in messages:
            handled = await self._handled(message, "ThresholdBreach", self.engine.on_breach)
            if handled is None:
                continue
            breach, request = handled
            self.metrics.breaches.labels(breach["status"]).inc()
            if request is not None:
                await self._send_retrain(request)
        await self._save()
        await self.tick()  # group_wait 0: notify now, not at the next timer

    async def handle_deployment(self, message: Any) -> None:
        """A Deployment: keep its retrain triggers; a new champion ends its retrain in flight."""
        await self._ready.wait()
        self.standard.consumed.labels(SERVICE, message.topic).inc()
        if message.value is None:  # a tombstone on the compacted topic
            return
        try:
            _name, deployment = serde.decode(message.value, expected="Deployment")
        except PoisonMessage as exc:
            await self._dead_letter_message(message, exc.reason, exc.detail)
            return
        try:
            changed = self.engine.on_deployment(deployment)
        except Exception as exc:  # this record's fault: never stop the agent
            log.exception("handling the deployment at %s@%d failed", message.topic, message.offset)
            error = f"{type(exc).__name__}: {exc}"
            await self._dead_letter_message(message, Reason.HANDLER_FAILED, error, "handle")
            return
        if changed:
            await self._save()

    async def handle_retrain_outcome(self, message: Any) -> None:
        """A RetrainOutcome: may end a retrain in flight, and fire or resolve a retrain alert.

        Poison is dead-lettered; the state is saved before faust may commit the offset.
        """
        await self._ready.wait()
        handled = await self._handled(message, "RetrainOutcome", self.engine.on_retrain_outcome)
        if handled is None:
            return
        outcome, changed = handled
        self.metrics.retrain_outcomes.labels(outcome["outcome"]).inc()
        if changed:
            log.info(
                "retrain %s for %s (request %s)",
                outcome["outcome"],
                outcome["deployment"],
                outcome["request_id"],
            )
            await self._save()
            await self.tick()  # a failed retrain on a group_wait 0 route: notify now

    async def tick(self) -> None:
        """Flush due groups into the outbox, with the state, in one Redis transaction."""
        await self._ready.wait()
        now = time.time()
        if not self.engine.is_due(now):
            return
        retraining = self.engine.retrains_in_flight()
        notes = self.engine.tick(now)
        entries = [
            Entry(
                id=n.id,
                receiver=n.receiver,
                body=encode(render(n, external_url=self.settings.public_url)).decode(),
                status=n.status,
                queued_at=now,
            )
            for n in notes
        ]
        if not entries and self.engine.retrains_in_flight() == retraining:
            # Only group timers moved: after a crash, a timer that looks due is looked at again
            # and finds nothing new, so this need not cost a state write.
            return
        await self._save(entries)
        if entries:
            for n in notes:
                log.info(
                    "queued %s notification %s for %s (%d alerts, group %s)",
                    n.status,
                    n.id,
                    n.receiver,
                    len(n.alerts),
                    n.group_key,
                )
            self.deliverer.wake.set()

    async def _save(self, entries: list[Entry] | None = None) -> None:
        """Persist the engine state and queue entries in one transaction; wait out Redis outages."""
        state = self.engine.state()
        while True:
            try:
                await self.store.commit(state, entries or ())
                return
            except redis.RedisError as exc:
                log.warning("Redis unavailable (%s); retrying in %.0f s", exc, REDIS_RETRY_S)
                await asyncio.sleep(REDIS_RETRY_S)

    async def _send(self, topic: Any, key: bytes, value: bytes, record: str) -> None:
        header = serde.fingerprint_header(record)
        sent = await topic.send(key=key, value=value, headers=[header])
        await sent  # wait for the broker's acknowledgement
        self.standard.produced.labels(SERVICE, topic.get_topic_name()).inc()

    async def _send_retrain(self, request: RetrainRequest) -> None:
        record = {
            "request_id": request.request_id,
            "deployment": request.deployment,
            "reason": request.reason,
            "requested_by": "alerting:retrain-policy",
            "requested_at": int(request.requested_at * 1000),
            "breach_ids": list(request.breach_ids),
            "last_n": None,
        }
        value = serde.encode("RetrainRequest", record)
        await self._send(self.retrain_topic, request.deployment.encode(), value, "RetrainRequest")
        self.metrics.retrain_requests.inc()
        log.info("retrain requested for %s (%s)", request.deployment, record["reason"])

    async def _handled(
        self, message: Any, expected: str, handle: Callable[[dict[str, Any], float], Any]
    ) -> tuple[dict[str, Any], Any] | None:
        """Decode a message as `expected` and hand it to the engine: (record, what `handle`
        returned), or None when it was dead-lettered (poison, or the handler failed on it)."""
        self.standard.consumed.labels(SERVICE, message.topic).inc()
        try:
            _name, record = serde.decode(message.value or b"", expected=expected)
        except PoisonMessage as exc:
            await self._dead_letter_message(message, exc.reason, exc.detail)
            return None
        try:
            return record, handle(record, time.time())
        except PoisonMessage as exc:
            await self._dead_letter_message(message, exc.reason, exc.detail, "handle")
        except Exception as exc:  # this record's fault, not the service's: never stop the agent
            log.exception("handling %s at %s@%d failed", expected, message.topic, message.offset)
            error = f"{type(exc).__name__}: {exc}"
            await self._dead_letter_message(message, Reason.HANDLER_FAILED, error, "handle")
        return None

    async def _dead_letter_message(
        self, message: Any, reason: Reason, detail: str, stage: str = "decode"
    ) -> None:
        record = self.dead_letters.record(
            message.topic,
            message.partition,
            message.offset,
            message.key,
            message.value or b"",
            stage,
            reason,
            detail,
        )
        await self._send(
            self.deadletter_topic,
            message.key or b"",
            self.dead_letters.encode(record),
            "DeadLetter",
        )
        self.standard.deadletter.labels(SERVICE, message.topic, reason.value).inc()
        log.warning("record at %s[%d]@%d dead-lettered: %s", message.topic, message.partition,
                    message.offset, detail)  # fmt: skip

    async def _dead_letter_entry(self, entry: Entry, error: str) -> None:
        record = self.dead_letters.record(
            f"webhook:{entry.receiver}",
            -1,
            -1,
            entry.id.encode(),
            entry.body.encode(),
            "deliver",
            Reason.DELIVERY_FAILED,
            error,
            attempts=entry.attempts,
        )
        await self._send(
            self.deadletter_topic, entry.id.encode(), self.dead_letters.encode(record), "DeadLetter"
        )
        self.standard.deadletter.labels(SERVICE, "webhook", Reason.DELIVERY_FAILED.value).inc()

    # -- background -----------------------------------------------------------------------------

    async def serve(self) -> None:
        """Start the outbox, the deliverer, the API and the metrics; run until shutdown."""
        s = self.settings
        self.stopping = asyncio.Event()
        self._redis = AsyncRedis(**s.redis_options(), socket_timeout=10)
        self.store = Store(self._redis, s.namespace)
        self.deliverer = Deliverer(
            store=self.store,
            receivers=self.engine.config.receivers,
            pool=guarded_pool(self.resolver, self.policy),
            dead_letter=self._dead_letter_entry,
            metrics=self.metrics,
            policy=RetryPolicy(
                base_s=s.backoff_base_s,
                cap_s=s.backoff_cap_s,
                max_attempts=s.max_attempts,
                retry_after_cap_s=s.retry_after_cap_s,
            ),
            circuit_failures=s.circuit_failures,
            circuit_cooldown_s=s.circuit_cooldown_s,
            concurrency=s.delivery_concurrency,
        )
        self._ready.set()
        port = serve_metrics(self.registry, s.metrics_port, s.metrics_host)
        api = create_api(self.engine, self.store, self._save, self.api_token)
        server = _QuietServer(
            uvicorn.Config(
                api, host=s.api_host, port=s.api_port, log_level="warning", lifespan="off"
            )
        )
        log.info(
            "alerting ready: API http://%s:%d, metrics :%d, %d receivers, %d routes, outbox %d",
            s.api_host,
            s.api_port,
            port,
            len(self.engine.config.receivers),
            len(self.engine.config.routes()),
            await self.store.depth(),
        )
        api_task = asyncio.create_task(server.serve())
        try:
            await self.deliverer.run(self.stopping)
        finally:
            server.should_exit = True
            await asyncio.wait([api_task], timeout=5.0)
            await self._redis.aclose()


def run(
    settings: AlertingSettings, policy: Policy = PRODUCTION, resolver: Resolver = socket.getaddrinfo
) -> None:
    """Build the service and run faust's worker (it owns SIGINT/SIGTERM) until it stops."""
    service = AlertingService(settings, policy=policy, resolver=resolver)
    worker = faust.Worker(service.app, loglevel=settings.log_level.lower(), quiet=True)
    worker.execute_from_commandline()
