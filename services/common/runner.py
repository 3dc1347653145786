"""The consume-handle-produce loop: micro-batches, dead-lettering, at-least-once delivery.

One batch at a time: consume up to `batch_size` messages (what has arrived, waiting at most
`max_wait_s` for more), decode each, hand the good ones to the handler, produce its outputs and
the dead letters, wait for every delivery report, and only then commit the batch's offsets
(explicit offsets; after each batch and waited for, or at most every `commit_interval_s` when
one is set, without waiting, then waited for when the stream goes quiet, at a revoke, at a stop).
A crash anywhere before the commit replays what was delivered since the last commit: duplicates
are bounded by one batch (or one commit interval) per crash and nothing is lost. Poison never
stops a partition: it goes to `deadletter` with its original bytes, source coordinates, stage and
reason.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition

from services.common.deadletter import DeadLetterWriter
from services.common.errors import FatalError, PoisonMessage, Reason
from services.common.lifecycle import freeze_startup_objects
from services.common.messages import Handler, Inbound, Outbound, Rejected
from services.common.metrics import ConsumerLag, StandardMetrics
from services.common.producing import produce_waiting

log = logging.getLogger(__name__)

# At shutdown, how long to keep serving a rebalance so that deferred commits can land.
DEFERRED_COMMIT_WAIT_S = 4.0
# In a revoke callback the partitions are still ours: a commit refused as mid-rebalance is
# retried this long (the callback holds up the rebalance meanwhile).
REVOKE_COMMIT_WAIT_S = 2.0
REVOKE_COMMIT_RETRY_S = 0.1
_DEFERRING = (KafkaError.REBALANCE_IN_PROGRESS, KafkaError.ILLEGAL_GENERATION)

Decoder = Callable[[str, bytes], tuple[str, dict[str, Any]]]


@dataclasses.dataclass(frozen=True)
class RunnerConfig:
    """How the loop batches, retries and names itself."""

    service: str
    topics: tuple[str, ...]
    batch_size: int = 500
    # Once a batch's first message is in, how long to wait for the batch to fill. 0 takes what
    # has arrived: batches still fill under load (events arrive while one is processed), and a
    # quiet stream is answered at once.
    max_wait_s: float = 0.1
    idle_wait_s: float = 0.1  # one wait for a first message (bounds the reaction to `stop`)
    # Delivered offsets are committed at most this often (0: after every batch). A crash
    # replays what was delivered since the last commit; a rebalance or a stop commits first.
    commit_interval_s: float = 0.0
    handler_attempts: int = 3
    # A batch handled slower than this is suspect: if its offsets cannot be committed (the
    # consumer was evicted for exceeding max.poll.interval.ms), its messages are replayed one by
    # one and a message that stays too slow `handler_attempts` times is dead-lettered (R5).
    max_handle_s: float = 240.0
    flush_timeout_s: float = 30.0
    shutdown_flush_s: float = 5.0
    # Exactly-once only: the producer's transaction.timeout.ms. A batch's transaction still
    # blocked `STUCK_AFTER_TIMEOUT_S` past it ends the process (services/common/watchdog.py).
    transaction_timeout_s: float = 60.0


def next_offsets(positions: dict[tuple[str, int], tuple[int, int]]) -> list[TopicPartition]:
    """The offsets to commit after a batch: one past the last message of each partition."""
    return [TopicPartition(t, p, last + 1) for (t, p), (_first, last) in positions.items()]


class Runner:
    """Runs a handler over topics until `stop` is set."""

    def __init__(
        self,
        config: RunnerConfig,
        consumer: Consumer,
        producer: Producer,
        decoder: Decoder,
        handler: Handler,
        deadletters: DeadLetterWriter,
        metrics: StandardMetrics,
    ) -> None:
        self.config = config
        self.consumer = consumer
        self.producer = producer
        self.decoder = decoder
        self.handler = handler
        self.deadletters = deadletters
        self.metrics = metrics
        self._delivery_errors: list[str] = []
        self._unreported: dict[str, int] = {}  # produced this batch, counted once delivered
        self._slow: dict[tuple[str, int, int], int] = {}  # message -> slow attempts
        self._produced: dict[tuple[str, int], int] = {}  # outputs sent, delivery not awaited
        self._pending: dict[tuple[str, int], int] = {}  # delivered, not yet committed
        self._sent: dict[tuple[str, int], int] = {}  # committed asynchronously, not confirmed
        self._last_commit = 0.0  # monotonic time of the last commit attempt
        self._revoked: set[tuple[str, int]] = set()  # revoked while the batch was being taken
        self.batches = 0
        self.lag = ConsumerLag(metrics.consumer_lag, config.service)

    # -- lifecycle -------------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        """Loop until `stop` is set, then flush, commit and close."""
        self.consumer.subscribe(list(self.config.topics), on_revoke=self._on_revoke)
        log.info("%s: consuming %s", self.config.service, ", ".join(self.config.topics))
        freeze_startup_objects()
        try:
            while not stop.is_set():
                messages = self.next_batch()
                if messages:
                    self.process(messages)
                else:
                    self.producer.poll(0)
                    self._commit_delivered()  # what an interval held back, now the stream is quiet
                self.lag.maybe_update(self.consumer)
        finally:
            self._shutdown()

    def next_batch(self) -> list[Message]:
        """Up to `batch_size` messages: those already here, else the first to arrive and its
        company, waiting `max_wait_s` for the batch to fill."""
        size, consume = self.config.batch_size, self.consumer.consume
        self._revoked.clear()
        messages = consume(num_messages=size, timeout=0)
        if not messages:
            messages = consume(num_messages=1, timeout=self.config.idle_wait_s)
            if not messages:
                return messages
        if len(messages) < size:
            messages.extend(
                consume(num_messages=size - len(messages), timeout=self.config.max_wait_s)
            )
        return self._drop_revoked(messages) if self._revoked else messages

    def _drop_revoked(self, messages: list[Message]) -> list[Message]:
        """Drop messages of partitions revoked while the batch was taken (R4).

        A consume call that serves a revoke can follow one that returned messages of the
        revoked partitions; their new owner starts from the committed offset and reads them
        again, so handling them here would answer them twice.
        """
        owned = {(tp.topic, tp.partition) for tp in self.consumer.assignment()}
        kept = [m for m in messages if m.error() is not None or (m.topic(), m.partition()) in owned]
        if len(kept) < len(messages):
            log.info(
                "dropped %d messages of revoked partitions; their new owner handles them",
                len(messages) - len(kept),
            )
        return kept

    def _shutdown(self) -> None:
        remaining = self.producer.flush(self.config.shutdown_flush_s)
        if remaining or self._delivery_errors:
            log.warning(
                "%d messages undelivered at shutdown (%s); their inputs will be replayed",
                remaining,
                "; ".join(self._delivery_errors[:3]) or "timeout",
            )
            self._produced.clear()  # not committable: the next owner replays them
            self._unreported.clear()  # nor counted as produced
        else:
            self._count_delivered()
        self._settle_deferred_commits()
        self.consumer.close()
        log.info("%s: stopped after %d batches", self.config.service, self.batches)

    # -- one batch -------------------------------------------------------------------------

    def process(self, messages: list[Message]) -> None:
        """Decode, handle, produce, wait for delivery, then commit offsets."""
        started = time.perf_counter()
        positions = self.work(messages)
        self.finish(positions)
        self.batches += 1
        self.metrics.batch_size.labels(self.config.service).observe(len(messages))
        self.metrics.processing.labels(self.config.service).observe(time.perf_counter() - started)

    def work(self, messages: list[Message]) -> dict[tuple[str, int], tuple[int, int]]:
        """Decode, handle and produce one batch; returns {(topic, partition): (first, last)}."""
        inbound: list[Inbound] = []
        positions: dict[tuple[str, int], tuple[int, int]] = {}
        for msg in messages:
            err = msg.error()
            if err is not None:
                self._on_consume_error(err)
                continue
            topic, partition, offset = msg.topic(), msg.partition(), msg.offset()
            first = positions.get((topic, partition), (offset, offset))[0]
            positions[(topic, partition)] = (first, offset)
            value = msg.value() or b""
            try:
                name, record = self._decode(topic, partition, offset, value)
            except PoisonMessage as poison:
                self._dead_letter(
                    topic,
                    partition,
                    offset,
                    msg.key(),
                    value,
                    "decode",
                    poison.reason,
                    poison.detail,
                )
                continue
            ts_type, ts = msg.timestamp()
            inbound.append(
                Inbound(
                    topic, partition, offset, msg.key(), value, name, record, ts if ts_type else 0
                )
            )
        for (topic, _partition), (first, last) in positions.items():
            self.metrics.consumed.labels(self.config.service, topic).inc(last - first + 1)
        if inbound:
            for item in self._handle_watched(inbound):
                if isinstance(item, Rejected):
                    src = item.inbound
                    self._dead_letter(
                        src.topic,
                        src.partition,
                        src.offset,
                        src.key,
                        src.value,
                        "handle",
                        item.reason,
                        item.detail,
                    )
                else:
                    self._produce(item)
        return positions

    def _decode(
        self, topic: str, partition: int, offset: int, value: bytes
    ) -> tuple[str, dict[str, Any]]:
        """Decode one message; anything but a broker or fatal error is the record's fault
        (PoisonMessage), a decoder bug included."""
        try:
            return self.decoder(topic, value)
        except (PoisonMessage, FatalError, KafkaException):
            raise
        except Exception as exc:  # noqa: BLE001 (a decoder bug is this record's fault)
            self.metrics.errors.labels(self.config.service, "decode").inc()
            log.warning("decoder failed on %s[%d]@%d: %r", topic, partition, offset, exc)
            raise PoisonMessage(Reason.DECODE_FAILED, repr(exc)[:300]) from None

    def finish(self, positions: dict[tuple[str, int], tuple[int, int]]) -> None:
        """At least once: a batch's offsets are committed only once its outputs are delivered.

        Without a commit interval, each batch waits for its delivery reports and its commit.
        With one, outputs go out while the next batches are handled; once per interval the loop
        waits for them all (a flush) and commits their offsets without waiting for the commit.
        After a slow batch it waits for the commit too: a refused commit is how an eviction is
        noticed (R5).
        """
        for tp in next_offsets(positions):
            self._produced[(tp.topic, tp.partition)] = tp.offset
        if time.monotonic() - self._last_commit >= self.config.commit_interval_s:
            self._commit_delivered(
                asynchronous=self.config.commit_interval_s > 0 and not self._slow
            )
        else:
            self.producer.poll(0)  # serves failed deliveries' reports

    def _handle_watched(self, batch: list[Inbound]) -> list[Outbound | Rejected]:
        """Handle a batch, isolating messages that were too slow before (R5)."""
        if not self._slow:
            return self._timed(batch)
        suspects = [m for m in batch if (m.topic, m.partition, m.offset) in self._slow]
        results: list[Outbound | Rejected] = []
        for m in suspects:
            if self._slow[(m.topic, m.partition, m.offset)] >= self.config.handler_attempts:
                results.append(
                    Rejected(
                        m,
                        Reason.TIMEOUT,
                        (
                            f"handling took longer than {self.config.max_handle_s:.0f} s "
                            f"{self.config.handler_attempts} times"
                        ),
                    )
                )
                continue
            results.extend(self._timed([m]))
        rest = [m for m in batch if (m.topic, m.partition, m.offset) not in self._slow]
        if rest:
            results.extend(self._timed(rest))
        return results

    def _timed(self, batch: list[Inbound]) -> list[Outbound | Rejected]:
        started = time.monotonic()
        results = self._handle(batch)
        if time.monotonic() - started > self.config.max_handle_s:
            self.metrics.errors.labels(self.config.service, "slow_batch").inc()
            log.warning(
                "a batch of %d took %.1f s (limit %.0f s)",
                len(batch),
                time.monotonic() - started,
                self.config.max_handle_s,
            )
            for m in batch:
                key = (m.topic, m.partition, m.offset)
                self._slow[key] = self._slow.get(key, 0) + 1
        else:
            for m in batch:
                self._slow.pop((m.topic, m.partition, m.offset), None)
        return results

    def _handle(self, batch: list[Inbound]) -> list[Outbound | Rejected]:
        """Handle a batch; on repeated failure, isolate the messages that cause it."""
        for attempt in range(1, self.config.handler_attempts + 1):
            try:
                return self.handler.handle(batch)
            except FatalError:
                raise
            except PoisonMessage as poison:  # no retry can help: find the message and move on
                if len(batch) == 1:
                    return [Rejected(batch[0], poison.reason, poison.detail)]
                break
            except Exception as exc:
                self.metrics.errors.labels(self.config.service, "handler").inc()
                log.warning(
                    "handler failed on a batch of %d (attempt %d): %r", len(batch), attempt, exc
                )
                time.sleep(min(0.05 * 2**attempt, 1.0))
        if len(batch) == 1:
            return [
                Rejected(
                    batch[0],
                    Reason.HANDLER_FAILED,
                    f"handler failed {self.config.handler_attempts} times",
                )
            ]
        results: list[Outbound | Rejected] = []
        for one in batch:
            results.extend(self._handle([one]))
        return results

    def _produce(self, out: Outbound) -> None:
        self._unreported[out.topic] = self._unreported.get(out.topic, 0) + 1
        produce_waiting(
            self.producer,
            out.topic,
            out.value,
            out.key,
            headers=list(out.headers),
            on_delivery=self._on_delivery,
        )

    def _on_delivery(self, err: KafkaError | None, msg: Message) -> None:
        # With `delivery.report.only.error` (the scorer sets it) only failures arrive here.
        if err is not None:
            self._delivery_errors.append(f"{msg.topic()}: {err}")

    def _count_delivered(self) -> None:
        """The outputs sent so far are delivered (or committed): count them; their inputs'
        offsets become committable."""
        for topic, n in self._unreported.items():
            self.metrics.produced.labels(self.config.service, topic).inc(n)
        self._unreported.clear()
        self._pending.update(self._produced)
        self._produced.clear()

    def _flush_or_die(self) -> None:
        """Wait for every output's delivery; their inputs' offsets become committable."""
        remaining = self.producer.flush(self.config.flush_timeout_s)
        if remaining or self._delivery_errors:
            errors = "; ".join(self._delivery_errors[:3])
            raise FatalError(
                f"outputs not delivered ({remaining} pending; {errors or 'timeout'}): "
                "exiting so the batch is replayed from the last stored offsets"
            )
        self._count_delivered()

    def _commit_delivered(
        self, only: set[tuple[str, int]] | None = None, asynchronous: bool = False
    ) -> int | None:
        """Wait for the outputs still in flight, then commit (``_commit_pending``)."""
        if self._produced or self._unreported:
            self._flush_or_die()
        return self._commit_pending(only, asynchronous)

    def _commit_pending(
        self, only: set[tuple[str, int]] | None = None, asynchronous: bool = False
    ) -> int | None:
        """Commit delivered batches' offsets; keep them if the group is mid-rebalance.

        An asynchronous commit's outcome is not awaited: its offsets are committed again, and
        waited for, by the next synchronous commit of their partitions (when the stream goes
        quiet, at a revoke, at a stop). A lost one only replays delivered events. Returns the
        error code of a commit deferred by a rebalance, else None.
        """
        keys = [k for k in self._pending if only is None or k in only]
        # Offsets sent asynchronously, outcome unknown: a synchronous commit sends them again.
        unsure = {
            k: o for k, o in self._sent.items() if not asynchronous and (only is None or k in only)
        }
        if not keys and not unsure:
            return None
        chosen = unsure | {k: self._pending[k] for k in keys}
        offsets = [TopicPartition(t, p, o) for (t, p), o in chosen.items()]
        self._last_commit = time.monotonic()
        try:
            self.consumer.commit(offsets=offsets, asynchronous=asynchronous)
        except KafkaException as exc:
            code = exc.args[0].code()
            if code in _DEFERRING:
                # Still ours until the revoke callback runs: commit there, or after the next batch.
                log.info("commit deferred, the group is rebalancing (%s)", exc.args[0].name())
                return code
            self.metrics.errors.labels(self.config.service, "commit").inc()
            log.info("offsets not committed (%s); the batch will be replayed", exc)
            for key in keys:
                self._pending.pop(key, None)
            for key in unsure:
                self._sent.pop(key, None)
            return None  # slow suspects stay known: the replayed batch isolates them (R5)
        for key in keys:
            self._pending.pop(key, None)
        if asynchronous:
            self._sent.update({(tp.topic, tp.partition): tp.offset for tp in offsets})
            return None
        for key in unsure:
            self._sent.pop(key, None)
        if self._slow:  # committed past them: they will not come back
            done = {(tp.topic, tp.partition): tp.offset for tp in offsets}
            self._slow = {k: n for k, n in self._slow.items() if k[2] >= done.get((k[0], k[1]), -1)}
        return None

    def _settle_deferred_commits(self) -> None:
        """Commit what a rebalance deferred before leaving, or a clean stop would duplicate it.

        Polling serves the rebalance (and its revoke callback, which commits); messages it
        returns are not handled, so their offsets stay uncommitted and the next owner reads them.
        """
        self._commit_pending()
        deadline = time.monotonic() + DEFERRED_COMMIT_WAIT_S
        while (self._pending or self._sent) and time.monotonic() < deadline:
            self.consumer.consume(num_messages=1, timeout=0.2)
            self._commit_pending()
        if self._pending or self._sent:
            log.warning(
                "offsets of %d partitions still uncommitted at shutdown (group rebalancing); "
                "their last batch will be replayed",
                len(self._pending.keys() | self._sent.keys()),
            )

    def _on_revoke(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """Before partitions move to another member, commit what was delivered for them.

        The callback still owns them, so a commit refused as mid-rebalance is retried here.
        Whatever is still uncommitted afterwards is the new owner's to replay: it is never
        committed from here later (that could move the new owner's offsets back), and messages
        of these partitions taken for the current batch are dropped (``_drop_revoked``).
        """
        revoked = {(tp.topic, tp.partition) for tp in partitions}
        self._revoked |= revoked
        deferred = self._commit_delivered(revoked)
        deadline = time.monotonic() + REVOKE_COMMIT_WAIT_S
        while deferred == KafkaError.REBALANCE_IN_PROGRESS and time.monotonic() < deadline:
            time.sleep(REVOKE_COMMIT_RETRY_S)
            deferred = self._commit_pending(revoked)
        left = {k for k in revoked if k in self._pending or k in self._sent}
        if left:
            self.metrics.errors.labels(self.config.service, "commit").inc()
            log.warning(
                "offsets of %d revoked partitions not committed; their new owner replays "
                "their last delivered batch",
                len(left),
            )
            for key in left:
                self._pending.pop(key, None)
                self._sent.pop(key, None)
        self.lag.forget(revoked)

    def _dead_letter(
        self,
        topic: str,
        partition: int,
        offset: int,
        key: bytes | None,
        value: bytes,
        stage: str,
        reason: Reason,
        detail: str,
    ) -> None:
        dl = self.deadletters
        record = dl.record(topic, partition, offset, key, value, stage, reason, detail)
        self._produce(Outbound(dl.topic, key, dl.encode(record)))
        self.metrics.deadletter.labels(self.config.service, topic, reason.value).inc()

    def _on_consume_error(self, err: KafkaError) -> None:
        if err.code() == KafkaError._PARTITION_EOF:
            return
        self.metrics.errors.labels(self.config.service, "consume").inc()
        # A static member fenced after a broker restart gets _FATAL with fatal() False: the
        # consumer is dead all the same, and only a restart brings the process back.
        if err.fatal() or err.code() == KafkaError._FATAL:
            raise FatalError(f"fatal consumer error: {err}")
        log.warning("consumer error: %s", err)
