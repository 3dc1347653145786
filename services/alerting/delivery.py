"""Webhook delivery from the Redis outbox, outside the consumer loop.

A scan every `scan_s` (or as soon as new notifications are queued) takes the due entries; each
goes out as a signed POST (Standard Webhooks headers, the same `webhook-id` on every attempt, a
fresh timestamp and signature each time) through the SSRF-guarded pool with a per-attempt
timeout. The retry policy decides what comes next: delivered (removed), retried later
(rescheduled with backoff or the receiver's `Retry-After`), or given up (dead-lettered, then
removed). A circuit per receiver holds its entries in the outbox while it is open. A slow or dead
receiver only ever costs its own entries time: breaches keep being consumed.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable

import httpcore

from services.alerting.alerting_metrics import CIRCUIT_VALUES, AlertingMetrics
from services.alerting.outbox import Entry, Store
from services.alerting.retry_policy import Circuit, Decision, Outcome, RetryPolicy
from services.alerting.routing import Receiver
from services.alerting.webhook_signing import sign

log = logging.getLogger(__name__)

DeadLetter = Callable[[Entry, str], Awaitable[None]]
USER_AGENT = "streamops-alerting"


@dataclasses.dataclass
class Deliverer:
    """Drains the outbox to the configured receivers."""

    store: Store
    receivers: dict[str, Receiver]
    pool: httpcore.AsyncConnectionPool
    dead_letter: DeadLetter
    metrics: AlertingMetrics
    policy: RetryPolicy = dataclasses.field(default_factory=RetryPolicy)
    circuit_failures: int = 5
    circuit_cooldown_s: float = 30.0
    concurrency: int = 32
    scan_s: float = 0.2
    clock: Callable[[], float] = time.time

    def __post_init__(self) -> None:
        self.wake = asyncio.Event()
        self._in_flight: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self.circuits = {
            name: Circuit(self.circuit_failures, self.circuit_cooldown_s) for name in self.receivers
        }

    async def run(self, stopping: asyncio.Event) -> None:
        """Scan and deliver until `stopping` is set; attempts in flight are left to finish."""
        while not stopping.is_set():
            try:
                await self.scan()
            except Exception:  # Redis hiccup: the outbox is still there, try again shortly
                log.exception("outbox scan failed; retrying")
                await asyncio.sleep(1.0)
            self.wake.clear()
            try:
                await asyncio.wait_for(self.wake.wait(), self.scan_s)
            except TimeoutError:
                pass
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=5.0)

    async def scan(self) -> None:
        """Start an attempt for every due entry not already in flight."""
        now = self.clock()
        free = self.concurrency - len(self._in_flight)
        if free <= 0:
            return
        due = await self.store.due(now, free + len(self._in_flight))
        for entry in await self.store.get_many([i for i in due if i not in self._in_flight]):
            receiver = self.receivers.get(entry.receiver)
            if receiver is None:
                await self._give_up(entry, f"receiver {entry.receiver!r} is no longer configured")
                continue
            circuit = self.circuits[receiver.name]
            if not circuit.allow(now):
                await self.store.reschedule(entry, circuit.retry_at(now))
                continue
            self._in_flight.add(entry.id)
            task = asyncio.create_task(self._attempt(entry, receiver, circuit))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        self.metrics.outbox_depth.set(await self.store.depth())

    async def _attempt(self, entry: Entry, receiver: Receiver, circuit: Circuit) -> None:
        try:
            outcome, headers = await self._post(entry, receiver)
            now = self.clock()
            decision = self.policy.decide(outcome, entry.attempts + 1, headers, now)
            self.metrics.attempts.labels(receiver.name, decision.reason.value).inc()
            await self._settle(entry, receiver, circuit, decision, outcome, now)
        except Exception:
            log.exception("delivery of %s to %s failed unexpectedly", entry.id, receiver.name)
        finally:
            self._in_flight.discard(entry.id)
            self.wake.set()  # a slot is free: look for the next due entry now
            self.metrics.circuit.labels(receiver.name).set(
                CIRCUIT_VALUES[circuit.state(self.clock()).value]
            )

    async def _post(
        self, entry: Entry, receiver: Receiver
    ) -> tuple[int | BaseException, dict[str, str]]:
        body = entry.body.encode()
        signed = sign([s.reveal() for s in receiver.secrets], entry.id, int(self.clock()), body)
        headers = [
            (b"content-type", b"application/json"),
            (b"user-agent", USER_AGENT.encode()),
            *((k.encode(), v.encode()) for k, v in signed.items()),
        ]
        t = receiver.timeout_s
        try:
            response = await asyncio.wait_for(
                self.pool.request(
                    "POST",
                    receiver.url,
                    headers=headers,
                    content=body,
                    extensions={"timeout": {"connect": t, "read": t, "write": t, "pool": t}},
                ),
                t,  # the whole attempt, however slowly the receiver trickles bytes
            )
        except (TimeoutError, httpcore.TimeoutException) as exc:
            return TimeoutError(f"no answer within {t:g} s ({type(exc).__name__})"), {}
        except (httpcore.NetworkError, httpcore.ProtocolError) as exc:
            return ConnectionError(f"{type(exc).__name__}: {exc}"), {}
        except Exception as exc:  # UnsafeDestination, DNS failure (RetryableError), bugs
            return exc, {}
        return response.status, {
            k.decode("latin-1"): v.decode("latin-1") for k, v in response.headers
        }

    async def _settle(
        self,
        entry: Entry,
        receiver: Receiver,
        circuit: Circuit,
        decision: Decision,
        outcome: int | BaseException,
        now: float,
    ) -> None:
        attempts = entry.attempts + 1
        if decision.reason is Outcome.DELIVERED:
            circuit.record(True, now)
            await self.store.remove(entry.id)
            self.metrics.notifications.labels(receiver.name, "delivered").inc()
            self.metrics.latency.labels(receiver.name).observe(max(0.0, now - entry.queued_at))
            log.info("delivered %s to %s (attempt %d)", entry.id, receiver.name, attempts)
            return
        if decision.endpoint_failed:
            circuit.record(False, now)
        elif decision.reason is not Outcome.UNSAFE_DESTINATION:
            circuit.record(True, now)  # the endpoint answered; the request itself was refused
        error = outcome if isinstance(outcome, int) else f"{type(outcome).__name__}: {outcome}"
        tried = dataclasses.replace(entry, attempts=attempts, last_error=f"{error}")
        if decision.retry:
            log.info(
                "delivery of %s to %s: %s (attempt %d), next in %.1f s",
                entry.id,
                receiver.name,
                decision.reason.value,
                attempts,
                decision.delay_s,
            )
            await self.store.reschedule(tried, now + decision.delay_s)
            return
        why = "attempts exhausted" if decision.exhausted else "not retryable"
        await self._give_up(tried, f"{decision.reason.value} ({why}): {error}")

    async def _give_up(self, entry: Entry, error: str) -> None:
        log.warning("giving up on %s to %s: %s", entry.id, entry.receiver, error)
        await self.dead_letter(entry, error)
        await self.store.remove(entry.id)
        self.metrics.notifications.labels(entry.receiver, "dead_lettered").inc()
