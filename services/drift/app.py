"""Wires the drift service: reference follower, the micro-batch loop, Redis state with offsets.

The loop does not use the common runner, because its offsets live in Redis with its state: per
micro-batch it decodes events, predictions and actuals, applies them per deployment, closes the
windows that are due, produces their reports and breaches (idempotent producer), then prepares
state, join entries and the next offsets as one Redis transaction. That transaction is held
until the next batch's join read has been sent and its own batch's outputs are delivered (by
then their acknowledgements have had a batch's time to arrive), then sent behind the read
without waiting: Redis answers the read first and runs the transaction while the loop applies
the next batch (the read cannot see the held batch's join writes, so the join store lays them
over what it finds). Its reply is read before the following transaction is sent, and a quiet
stream, a rebalance or a stop sends and settles the one held. On assignment (and after a Redis
failure) the loop reloads the state and seeks every partition to the offset stored with it.
Kafka commits are made for lag visibility only. The windows of a deployment that has sent
nothing for ``idle_close_s`` are closed with the next batch, or on their own when the stream is
quiet (``services/drift/idle.py``).

With ``--shards N`` the group is N processes, each with its own ``--shard``: a process assigns
itself its partitions (no rebalancing), hands its closed windows over as parts, and process 0
merges them into the reports (``services/drift/merge.py``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import redis
from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    Producer,
    TopicPartition,
)
from prometheus_client import CollectorRegistry

from services.common import serde
from services.common.deployment_verifier import DeploymentVerifier
from services.common.errors import FatalError, PoisonMessage, Reason, RetryableError
from services.common.event_columns import EventColumns, EventColumnsReader
from services.common.kafka_config import KafkaConfig
from services.common.lifecycle import freeze_startup_objects
from services.common.metrics import ConsumerLag, StandardMetrics, serve_metrics
from services.common.model_verifier import ModelVerifier
from services.common.prediction_columns import PredictionColumnsReader, PredictionTuple, as_tuple
from services.common.topic_decoder import TopicDecoder
from services.common.topic_follower import FollowerDeadLetters, TopicFollower
from services.common.topics import TopicNamer
from services.drift.config import DriftSettings
from services.drift.control import ControlIntake, model_keys
from services.drift.drift_metrics import DriftMetrics
from services.drift.idle import IdleWatch
from services.drift.isolation import Coords, Isolation
from services.drift.join import Joiner
from services.drift.join_store import JoinKey, JoinStore, JoinWrites
from services.drift.merge import Every, GroupClock, Merged, Merger, Shared, SharedWrites
from services.drift.monitor import ClosedWindow, DeploymentMonitor, EventPart, MonitorConfig
from services.drift.publisher import Publisher
from services.drift.redis_line import RedisLine
from services.drift.reference import ReferenceBook
from services.drift.state_store import ClosedSummary, Snapshot, StateStore, StateWrite
from services.drift.time_bounds import TimeBounds

log = logging.getLogger(__name__)
SERVICE = "drift"
# After its group session timed out in a broker pause, librdkafka revokes the partitions and
# rejoins; a JoinGroup lost in the pause then waits up to max.poll.interval.ms for an answer
# while the service reads nothing (`make soak` saw the lag grow for minutes). A rebalance of this
# one-member group ends in on_assign within seconds, so past this the process exits and the
# supervisor's restart rejoins at once, from the offsets stored in Redis.
REJOIN_LIMIT_S = 30.0
JoinKeys = dict[tuple[str, str], list[JoinKey]]  # (deployment, topic) -> join key per record


class DriftLoop:
    """The consume, apply, produce, transact loop."""

    def __init__(
        self,
        settings: DriftSettings,
        consumer: Consumer,
        producer: Producer,
        book: ReferenceBook,
        store: StateStore,
        joins: JoinStore,
        standard: StandardMetrics,
        metrics: DriftMetrics,
        clock: GroupClock | None = None,
        merger: Merger | None = None,
    ) -> None:
        self.settings, self.consumer, self.producer = settings, consumer, producer
        self.book, self.store, self.joins = book, store, joins
        self.standard, self.metrics = standard, metrics
        self.namer = TopicNamer(settings.topic_prefix)
        # The three input topics' names, looked up once (the namer builds them on each access).
        self.events, self.predictions, self.actuals = (
            self.namer.events,
            self.namer.predictions,
            self.namer.actuals,
        )
        self.decode = TopicDecoder(self.namer)
        self.columns = EventColumnsReader.for_events(serde.default_serde())
        self.prediction_columns = PredictionColumnsReader.for_predictions(serde.default_serde())
        self.publisher = Publisher(producer, self.namer, standard, metrics)
        self.config = MonitorConfig(
            -(-settings.window_count // settings.shards),  # each shard's share of a window
            settings.allowed_lateness_s * 1000,
            settings.min_window_count or None,
            settings.detector,
            settings.shards,
        )
        # A sharded group's shared keys and clock, and (process 0 only) the merge of its windows.
        self.shared = Shared(settings.shared_namespace) if settings.shards > 1 else None
        self.group_clock, self.merger = clock, merger
        self.monitors: dict[str, DeploymentMonitor] = {}
        self.assigned: set[tuple[str, int]] = set()
        self.bounds = TimeBounds(settings.max_future_skew_s)
        self.idle = IdleWatch(settings.idle_close_s)
        self.isolation = Isolation()
        self.applying: list[Message] = []  # the messages being applied, blamed if it raises
        self.held: StateWrite | None = None  # the last batch's transaction, not sent yet
        self.lag = ConsumerLag(standard.consumer_lag, SERVICE)  # how far behind the stream it is
        self.stop = threading.Event()
        self.revoked_at: float | None = None  # when the group took the partitions back
        self.rejoin_limit_s = REJOIN_LIMIT_S

    # -- assignment and recovery ------------------------------------------------------------

    def _snapshot(self) -> Snapshot:
        while True:
            try:
                return self.store.load()
            except RetryableError as exc:
                if self.stop.is_set():
                    raise FatalError("stopping while Redis is unavailable") from exc
                log.warning("%s; retrying", exc)
                time.sleep(0.5)

    def _restore(self, snap: Snapshot) -> None:
        self.joins.forget()  # what the last transaction wrote is in the snapshot, or lost
        if self.merger is not None:
            self.merger.forget()
        self.monitors = {}
        for name, state in snap.monitors.items():
            m = DeploymentMonitor.from_state(
                lambda mid, n=name: self.book.with_model(n, mid), self.config, state
            )
            if m is None:
                log.warning("deployment %s: stored model unknown; its windows restart", name)
            else:
                self.monitors[name] = m
        self.idle.reset(self.monitors)  # time down is not quiet time: the backlog comes first

    def _send_held(self) -> None:
        """Send the held transaction behind what is on the line (it settles the one before),
        once its batch's reports, breaches and dead letters are delivered."""
        held, self.held = self.held, None
        if held is not None:
            self.publisher.flush()  # acknowledged by now, as a rule: a batch was applied since
            self.store.send(held)

    def _commit(self) -> None:
        """Send the held transaction, if any, and wait for every one sent."""
        self._send_held()
        self.store.settle()

    def _settle_quietly(self) -> None:
        """Commit what was applied before reloading: its failure needs no more than a log line."""
        try:
            self._commit()
        except RetryableError as exc:
            log.warning("last batch not committed (%s): state reloads from Redis", exc)

    def on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """Load state and start every partition at the offset stored with it."""
        self._settle_quietly()
        snap = self._snapshot()
        self._restore(snap)
        for tp in partitions:
            tp.offset = snap.offsets.get((tp.topic, tp.partition), OFFSET_BEGINNING)
        consumer.assign(partitions)
        self.assigned = {(tp.topic, tp.partition) for tp in partitions}
        self.revoked_at = None
        log.info(
            "assigned %d partitions; %d monitors restored", len(partitions), len(self.monitors)
        )

    def on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """Stop processing the partitions once the commit in flight has landed."""
        self._settle_quietly()
        consumer.unassign()
        self.lag.forget(self.assigned)
        self.assigned = set()
        self.revoked_at = time.monotonic()

    def recover(self) -> None:
        """After a failed batch: reload state from Redis and rewind to its offsets."""
        self.metrics.recoveries.inc()
        self.held = None  # built on the batch that failed, or on state Redis no longer holds
        self._settle_quietly()
        snap = self._snapshot()
        self._restore(snap)
        for topic, part in sorted(self.assigned):
            offset = snap.offsets.get((topic, part), OFFSET_BEGINNING)
            try:
                self.consumer.seek(TopicPartition(topic, part, offset))
            except KafkaException as exc:  # cannot rewind in place: restart from Redis
                raise FatalError(f"cannot seek {topic}[{part}] to {offset}: {exc}") from exc
        log.info("recovered from Redis: rewound %d partitions", len(self.assigned))

    def _shard_partitions(self, topics: list[str]) -> list[TopicPartition]:
        """This shard's partitions: ``p % shards == shard`` of each topic. The records of one
        association id (keyed by it) go to partition ``hash % count`` of each topic, so when the
        number of shards divides every topic's count they all land in the same shard."""
        shards, shard = self.settings.shards, self.settings.shard
        mine = []
        for topic in topics:
            found = self.consumer.list_topics(topic, timeout=30).topics.get(topic)
            if found is None or found.error is not None or not found.partitions:
                raise FatalError(f"topic {topic} not found: create the topics first")
            n = len(found.partitions)
            if n % shards:
                raise FatalError(
                    f"{topic} has {n} partitions, which {shards} shards do not divide: an "
                    "event, its predictions and its actual would be read by different "
                    "processes. Use a number of shards that divides every input topic's "
                    "partition count, or raise the topic's partitions (kafka-topics.sh --alter "
                    "--partitions)."
                )
            mine += [TopicPartition(topic, p) for p in range(n) if p % shards == shard]
        log.info("shard %d of %d: %d partitions", shard, shards, len(mine))
        return mine

    # -- the loop ---------------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        """Consume until `stop` is set, then flush and close."""
        self.stop = stop
        topics = [self.events, self.predictions, self.actuals]
        if self.shared is None:
            self.consumer.subscribe(topics, on_assign=self.on_assign, on_revoke=self.on_revoke)
        else:
            self.on_assign(self.consumer, self._shard_partitions(topics))
        freeze_startup_objects()
        try:
            while not stop.is_set():
                wait_s = self.settings.max_wait_ms / 1000
                self.step(self.consumer.consume(self.settings.batch_size, wait_s))
                self.lag.maybe_update(self.consumer)
                self.check_rejoined()
        finally:
            self._settle_quietly()
            self.producer.flush(5)
            self.consumer.close()

    def check_rejoined(self, now: float | None = None) -> None:
        """Exit (FatalError) when the partitions were revoked and not given back in time."""
        if self.revoked_at is None:
            return
        waited = (time.monotonic() if now is None else now) - self.revoked_at
        if waited > self.rejoin_limit_s:
            raise FatalError(
                f"the group has not given the partitions back {waited:.0f} s after revoking "
                "them (a rejoin lost in a broker outage): exiting to be restarted"
            )

    def step(self, msgs: list[Message]) -> None:
        """Apply what one poll returned (or, if nothing, commit and merge); after a failure,
        reload the state and rewind to its offsets."""
        try:
            if msgs:
                self.process(msgs)
                if len(msgs) < self.settings.batch_size:
                    # Caught up: no next batch to send it behind, so it goes now, and its reply
                    # is read now (a reply left unread behind the next batch's join read would
                    # be taken for an abandoned one).
                    self._commit()
            else:
                self.producer.poll(0)
                self._commit()
                self._quiet()
        except RetryableError as exc:
            log.warning("batch not committed (%s): recovering", exc)
            self.standard.errors.labels(SERVICE, "redis").inc()
            self.recover()
        except (FatalError, KafkaException, redis.RedisError):
            raise
        except Exception as exc:  # noqa: BLE001 (a record's fault: services/drift/isolation.py)
            self._isolate(exc)

    def _isolate(self, exc: Exception) -> None:
        """Applying a batch raised something unexpected: reload, rewind, and blame its records
        (one at a time next, see ``services/drift/isolation.py``)."""
        failed = [_coords(m) for m in self.applying if m.error() is None]
        self.applying = []
        log.warning(
            "applying %d messages failed: recovering, then applying them one at a time",
            len(failed),
            exc_info=exc,
        )
        self.standard.errors.labels(SERVICE, "handler").inc()
        if failed:
            self.isolation.failed(failed, exc)
        self.recover()

    def process(self, msgs: list[Message]) -> None:
        """Apply one micro-batch; the messages of a batch that failed are applied one at a time,
        each committed on its own."""
        readable = (m for m in msgs if m.error() is None)
        if len(msgs) == 1 or not self.isolation.suspect(map(_coords, readable)):
            self.applying = msgs
            self._process(msgs)
            self.applying = []
            return
        for msg in msgs:
            self.applying = [msg]
            self._process([msg])
            self._commit()
            self.applying = []
            if msg.error() is None:
                self.isolation.passed(_coords(msg))

    def _process(self, msgs: list[Message]) -> None:
        """Apply one micro-batch and hold its state and offsets as one transaction.

        Predictions and actuals are decoded first (the events and predictions of the batch as
        columns where they can be), and their join entries are read from Redis, ahead of the
        previous batch's transaction, while the events are decoded and added to their windows.
        """
        started = time.perf_counter()
        latest = self.bounds.latest()
        positions: dict[tuple[str, int], int] = {}
        consumed: dict[str, int] = defaultdict(int)
        inputs: dict[str, dict[str, list[Any]]] = defaultdict(lambda: defaultdict(list))
        events: list[Message] = []
        predictions: list[Message] = []
        for msg in msgs:
            err = msg.error()
            if err is not None:
                # A static member fenced after a broker pause gets _FATAL with fatal() False:
                # the consumer is dead all the same, and only a restart brings it back.
                if err.fatal() or err.code() == KafkaError._FATAL:
                    raise FatalError(f"fatal consumer error: {err}")
                if err.code() != KafkaError._PARTITION_EOF:
                    self.standard.errors.labels(SERVICE, "consume").inc()
                continue
            tp = (msg.topic(), msg.partition())
            if tp not in self.assigned:
                continue
            positions[tp] = msg.offset()
            consumed[tp[0]] += 1
            error = self.isolation.culprit((*tp, msg.offset()))
            if error is not None:
                self._refuse(msg, PoisonMessage(Reason.HANDLER_FAILED, error), "handle")
            elif tp[0] == self.events:
                events.append(msg)
            elif tp[0] == self.predictions:
                predictions.append(msg)
            else:
                record = self._decode(msg, "actual_time", latest)
                if record is not None:
                    inputs[record["deployment"]][tp[0]].append(record)
        for topic, n in consumed.items():
            self.standard.consumed.labels(SERVICE, topic).inc(n)
        for row in self._read_predictions(predictions, latest):
            inputs[row[1]][self.predictions].append(row)
        # The join read goes ahead of the previous batch's transaction on the same connection,
        # so its reply does not wait for the transaction's writes (the join store lays them over
        # it); Redis runs both while the events are decoded.
        keys = self._join_keys(inputs)
        fetch = self.joins.request(k for of_topic in keys.values() for k in of_topic)
        self._send_held()
        for deployment, part in self._read_events(events, latest):
            inputs[deployment][self.events].append(part)
        # Events need nothing from Redis: they go into their windows before the wait for it. A
        # failed transaction still discards all of this (the state reloads from Redis).
        begun = {d: self._apply_events(d, by_topic) for d, by_topic in inputs.items()}
        joiner = Joiner(fetch.entries(), self.book.model_id)
        closed: list[ClosedWindow] = []
        dirty = set()
        for deployment, by_topic in inputs.items():
            m, switched = begun[deployment]
            closed.extend(switched)
            if m is not None:
                closed.extend(self._apply_joined(m, deployment, by_topic, keys, joiner))
            if deployment in self.monitors:
                dirty.add(deployment)
        self.idle.heard(dirty)
        self._close_idle(closed, dirty)
        self._hold(
            closed,
            dirty,
            {tp: off + 1 for tp, off in positions.items()},
            self.joins.staged(joiner.writes()),
        )
        if positions:  # for lag dashboards only: correctness rests on the offsets in Redis
            try:
                self.consumer.commit(
                    offsets=[TopicPartition(t, p, o + 1) for (t, p), o in positions.items()],
                    asynchronous=True,
                )
            except KafkaException as exc:
                log.debug("lag commit skipped: %s", exc)
        self.standard.batch_size.labels(SERVICE).observe(len(msgs))
        self.standard.processing.labels(SERVICE).observe(time.perf_counter() - started)

    def _hold(
        self,
        closed: list[ClosedWindow],
        dirty: set[str],
        offsets: dict[tuple[str, int], int],
        joins: JoinWrites | None = None,
    ) -> None:
        """Publish the closed windows (and, in process 0 of a sharded group, the merged ones)
        and hold the transaction of the monitors changed, the offsets, the join entries and,
        sharded, the parts, marks and merged windows."""
        shared = None
        if self.shared is not None:
            if self.group_clock is not None:  # time windows close on the group's clock
                for d, t in self.group_clock.times(sorted(self.monitors)).items():
                    if self.monitors[d].advance(t):
                        self.monitors[d].close_due()  # parts, taken below
                        dirty.add(d)
            merged: list[Merged] = []
            if self.merger is not None:
                reports, merged, late = self.merger.due(self._merge_monitor)
                closed = closed + reports
                self.metrics.late.labels("event").inc(late)
                dirty |= {m.deployment for m in merged if m.deployment in self.monitors}
            parts = [p for d in sorted(dirty) for p in self.monitors[d].take_partials()]
            marks = {d: (self.monitors[d].mark(), self.monitors[d].latest()) for d in sorted(dirty)}
            shared = SharedWrites.of(self.shared, self.settings.shard, parts, marks, merged)
        if not (offsets or closed or dirty):
            return  # nothing changed (a quiet poll with nothing to merge)
        self.publisher.windows(closed)  # delivered before the transaction is sent (_send_held)
        summaries = [
            ClosedSummary(c.reference.deployment, c.figures.seq, _summary(c)) for c in closed
        ]
        self.held = self.store.prepare(
            {d: self.monitors[d].state() for d in sorted(dirty)},
            offsets,
            summaries,
            joins,
            shared,
        )

    def _merge_monitor(self, deployment: str) -> DeploymentMonitor | None:
        """The monitor whose thresholds evaluate a deployment's merged windows."""
        return self._monitor(deployment)[0]

    def _quiet(self) -> None:
        """With nothing to read: close the windows of deployments quiet for ``idle_close_s``
        and, in a sharded group, follow the group's clock (and merge, process 0)."""
        closed: list[ClosedWindow] = []
        dirty: set[str] = set()
        self._close_idle(closed, dirty)
        if dirty or self.shared is not None:
            self._hold(closed, dirty, {})
            self._commit()

    def _close_idle(self, closed: list[ClosedWindow], dirty: set[str]) -> None:
        """Close the open windows of the deployments that have been quiet for
        ``idle_close_s`` (adding them to ``closed``, or to the partial windows when sharded)."""
        now_ms, quiet = self.idle.quiet(self.monitors)
        for d in sorted(quiet):
            m = self.monitors[d]
            before = len(m.windows.open)
            closed.extend(m.close_idle(now_ms, self.idle.idle_ms))
            if len(m.windows.open) < before:
                log.info("deployment %s: %d idle windows closed", d, before - len(m.windows.open))
                dirty.add(d)

    def _refuse(self, msg: Message, poison: PoisonMessage, stage: str = "decode") -> None:
        """Dead-letter a message: its original bytes, where it came from and why."""
        self.publisher.dead_letter(_coords(msg), msg.key(), msg.value() or b"", poison, stage)

    def _decode(self, msg: Message, time_field: str, latest: int) -> dict[str, Any] | None:
        """A message's record, or None once it has been dead-lettered (unreadable, or its
        ``time_field`` out of bounds)."""
        try:
            record = self.decode(msg.topic(), msg.value() or b"")[1]
        except PoisonMessage as poison:
            self._refuse(msg, poison)
            return None
        except Exception as exc:  # noqa: BLE001 (a decoder bug is this record's fault)
            self.standard.errors.labels(SERVICE, "decode").inc()
            log.warning("decoder failed on %s[%d]@%d: %r", *_coords(msg), exc)
            self._refuse(msg, PoisonMessage(Reason.DECODE_FAILED, repr(exc)[:300]))
            return None
        poison = self.bounds.check(time_field, record[time_field], latest)
        if poison is not None:
            self._refuse(msg, poison)
            return None
        return record

    def _read_predictions(self, msgs: list[Message], latest: int) -> list[PredictionTuple]:
        """A batch's predictions in batch order: read as columns, the others one by one."""
        blocks, rest = self.prediction_columns.read([m.value() or b"" for m in msgs])
        refused = [self.bounds.refused(b.times, latest) for b in blocks]
        if not rest and len(blocks) == 1 and not refused[0].any():
            return blocks[0].tuples
        found = []
        for b, out in zip(blocks, refused, strict=True):
            for i, t, bad in zip(b.rows.tolist(), b.tuples, out.tolist(), strict=True):
                if bad:
                    self._refuse(msgs[i], self.bounds.refusal("event_time", t[-1], latest))
                else:
                    found.append((i, t))
        for i in rest:
            record = self._decode(msgs[i], "event_time", latest)
            if record is not None:
                self.prediction_columns.learn(record)  # its layout is read as columns next time
                found.append((i, as_tuple(record)))
        found.sort(key=lambda item: item[0])
        return [t for _, t in found]

    def _read_events(self, msgs: list[Message], latest: int) -> Iterator[tuple[str, EventPart]]:
        """A batch's events by deployment: blocks read as columns, the others one by one."""
        blocks, rest = self.columns.read([m.value() or b"" for m in msgs])
        for block in blocks:
            timely = self._timely(block, msgs, latest)
            if timely.rows.size:
                yield timely.deployment, timely
        for i in rest:
            record = self._decode(msgs[i], "event_time", latest)
            if record is not None:
                self.columns.learn(record)  # the next events of its layout are read as columns
                yield record["deployment"], (i, record)

    def _timely(self, block: EventColumns, msgs: list[Message], latest: int) -> EventColumns:
        """The block's events whose times are in bounds; the others are dead-lettered."""
        refused = self.bounds.refused(block.times, latest)
        if not refused.any():
            return block
        for i, t in zip(block.rows[refused].tolist(), block.times[refused].tolist(), strict=True):
            self._refuse(msgs[i], self.bounds.refusal("event_time", t, latest))
        return block.take(~refused)

    def _join_keys(self, inputs: dict[str, dict[str, list[Any]]]) -> JoinKeys:
        """The join keys of each deployment's predictions and actuals, in their order."""
        keys: JoinKeys = {}
        for deployment, by_topic in inputs.items():
            keys[(deployment, self.predictions)] = [
                (deployment, row[0]) for row in by_topic[self.predictions]
            ]
            keys[(deployment, self.actuals)] = [
                (deployment, r["association_id"]) for r in by_topic[self.actuals]
            ]
        return keys

    def _monitor(self, deployment: str) -> tuple[DeploymentMonitor | None, list[ClosedWindow]]:
        ref = self.book.get(deployment)
        m = self.monitors.get(deployment)
        if ref is None:
            return m, []
        if m is None:
            self.monitors[deployment] = DeploymentMonitor(ref, self.config)
            return self.monitors[deployment], []
        old = m.reference
        if (old.model_id, old.revision, old.window_seconds) != (
            ref.model_id,
            ref.revision,
            ref.window_seconds,
        ):
            log.info(
                "deployment %s: reference now %s v%s",
                deployment,
                ref.model_id[:12],
                ref.model_version,
            )
            return m, m.switch(ref)
        return m, []

    def _apply_events(
        self, deployment: str, by_topic: dict[str, list[Any]]
    ) -> tuple[DeploymentMonitor | None, list[ClosedWindow]]:
        """A deployment's monitor (None: not monitored) with the batch's events added, and the
        windows a reference switch closed."""
        m, closed = self._monitor(deployment)
        if m is None:
            self.metrics.unmonitored.inc(sum(map(_count, by_topic.values())))
        else:
            m.add_event_parts(by_topic[self.events])
        return m, closed

    def _apply_joined(
        self,
        m: DeploymentMonitor,
        deployment: str,
        by_topic: dict[str, list[Any]],
        keys: JoinKeys,
        joiner: Joiner,
    ) -> list[ClosedWindow]:
        """Add the batch's predictions and actuals (after the events); the windows now due."""
        # A deployment first seen in this batch's events has no join keys: hence the defaults.
        late = m.add_prediction_tuples(
            by_topic[self.predictions], keys.get((deployment, self.predictions), []), joiner
        )
        self.metrics.late.labels("prediction").inc(late)
        # One monitor call for the batch's actuals: the rows keep their order, so the
        # detector sees the same error sequence as with a call per actual.
        joined = []
        actuals = zip(by_topic[self.actuals], keys.get((deployment, self.actuals), []), strict=True)
        for a, key in actuals:
            rows = joiner.actual(key, a["label"], int(a["actual_time"]))
            if rows:
                joined.extend(rows)
        m.add_joined(joined)
        return m.close_due()


def _coords(msg: Message) -> Coords:
    return msg.topic(), msg.partition(), msg.offset()


def _count(items: list[Any]) -> int:
    """Messages in a deployment's inputs of one topic (a block of columns holds many)."""
    return sum(p.rows.size if isinstance(p, EventColumns) else 1 for p in items)


def _summary(c: ClosedWindow) -> dict[str, Any]:
    f = c.figures
    return {
        "model_id": c.reference.model_id,
        "start": f.start,
        "end": f.end,
        "events": f.event_count,
        "predictions": f.prediction_count,
        "late": f.late_events,
        "bins": c.bins,
    }


def consumer_config(settings: DriftSettings, kafka: KafkaConfig) -> dict[str, Any]:
    """The stream consumer's configuration: range assignment, the settings' fetch size and
    wait, and static membership when the process has an instance id."""
    conf = kafka.consumer(
        settings.group_id,
        partition_assignment_strategy="range",
        fetch_min_bytes=settings.fetch_min_bytes,
        fetch_wait_max_ms=settings.fetch_wait_max_ms,
    )
    if settings.instance_id:  # static membership: a restarted process gets its partitions back
        conf["group.instance.id"] = settings.instance_id
    return conf


def run(settings: DriftSettings, stop: threading.Event) -> None:
    """Replay the control topics, then monitor until `stop` is set."""
    registry = CollectorRegistry()
    standard, metrics = StandardMetrics(registry, SERVICE), DriftMetrics(registry)
    serve_metrics(registry, settings.metrics_port, settings.metrics_host)
    namer = TopicNamer(settings.topic_prefix)
    kafka = KafkaConfig.from_settings(settings, f"drift-{settings.instance_id or 'main'}")
    book = ReferenceBook(settings.window_seconds)
    intake = ControlIntake(
        namer.models,
        ModelVerifier(model_keys(settings.trusted_keys_dir or Path(settings.var_dir) / "keys")),
        DeploymentVerifier.from_dir(settings.deployment_keys()),
        book.apply,
    )
    follower = TopicFollower(
        kafka.consumer(f"{settings.group_id}-control"),
        [namer.models, namer.deployments],
        TopicDecoder(namer),
        intake,
        dead_letter=FollowerDeadLetters.own(kafka.producer(), namer.deadletter, SERVICE, standard),
    ).start()
    follower.wait_ready(settings.replay_timeout_s)
    client = redis.Redis(**settings.redis_options(), socket_timeout=10, socket_connect_timeout=5)
    line = RedisLine(client)  # the state and the join store share it: see redis_line
    sharded = settings.shards > 1
    clock = merger = None
    if sharded:
        shared = Shared(settings.shared_namespace)
        clock = GroupClock(client, shared, Every(0.1))
        if settings.shard == 0:  # process 0 merges the group's windows
            merger = Merger(client, shared, book.with_model, Every(0.1))
    loop = DriftLoop(
        settings,
        Consumer(consumer_config(settings, kafka)),
        Producer(kafka.producer()),
        book,
        StateStore(
            client,
            line,
            settings.namespace,
            settings.history_windows,
            settings.closed_namespace,
        ),
        JoinStore(line, settings.namespace, settings.join_ttl_s, label_delay=book.label_delay),
        standard,
        metrics,
        clock,
        merger,
    )
    try:
        loop.run(stop)
    finally:
        follower.stop()
        client.close()
