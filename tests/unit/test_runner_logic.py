"""The runner's batch logic with in-memory stand-ins for the Kafka clients.

These check ordering and routing only; delivery guarantees are proven against the real broker
in tests/integration (R3, R6, R16).
"""

from __future__ import annotations

import dataclasses
import threading
import time

import pytest
from prometheus_client import CollectorRegistry

from services.common.deadletter import DeadLetterWriter
from services.common.errors import FatalError, PoisonMessage, Reason
from services.common.metrics import StandardMetrics
from services.common.runner import Inbound, Outbound, Rejected, Runner, RunnerConfig

pytestmark = pytest.mark.unit


class Msg:
    def __init__(self, topic, partition, offset, value, key=b"k"):
        self._t, self._p, self._o, self._v, self._k = topic, partition, offset, value, key

    def error(self):
        return None

    def topic(self):
        return self._t

    def partition(self):
        return self._p

    def offset(self):
        return self._o

    def value(self):
        return self._v

    def key(self):
        return self._k

    def timestamp(self):
        return (1, 1000)


class FakeProducer:
    def __init__(self, log, fail=False):
        self.log, self.fail, self.pending = log, fail, []

    def produce(self, topic, value, key, headers=None, on_delivery=None):
        self.log.append(("produce", topic, value))
        self.pending.append((topic, on_delivery))

    def poll(self, _t):
        return 0

    def flush(self, _t):
        for topic, cb in self.pending:
            cb("broker down" if self.fail else None, Msg(topic, 0, 0, b""))
        self.log.append(("flush",))
        self.pending = []
        return 0


class FakeConsumer:
    def __init__(self, log):
        self.log = log

    def commit(self, offsets=None, asynchronous=True):
        self.log.append(("commit", sorted((tp.topic, tp.partition, tp.offset) for tp in offsets)))


def decoder(topic, value):
    if value.startswith(b"bad"):
        raise PoisonMessage(Reason.NOT_AVRO, "not a record")
    return "FeatureEvent", {"v": value}


class Upper:
    def __init__(self, fail_on=None):
        self.fail_on = fail_on
        self.calls = 0

    def handle(self, batch: list[Inbound]):
        self.calls += 1
        if self.fail_on and any(m.value == self.fail_on for m in batch):
            raise RuntimeError("model exploded")
        return [Outbound("out", m.key, m.value.upper()) for m in batch]


def make(handler, fail=False):
    log: list = []
    registry = CollectorRegistry()
    runner = Runner(
        RunnerConfig(service="t", topics=("in",), handler_attempts=2),
        FakeConsumer(log),
        FakeProducer(log, fail),
        decoder,
        handler,
        DeadLetterWriter("dlq", "t", lambda name, rec: repr(rec).encode()),
        StandardMetrics(registry, "t"),
    )
    return runner, log, registry


def test_outputs_are_flushed_before_offsets_are_committed():
    runner, log, registry = make(Upper())
    runner.process([Msg("in", 0, 5, b"a"), Msg("in", 1, 9, b"b"), Msg("in", 0, 6, b"c")])
    kinds = [entry[0] for entry in log]
    assert kinds == ["produce", "produce", "produce", "flush", "commit"]
    assert log[-1] == ("commit", [("in", 0, 7), ("in", 1, 10)])
    assert (
        registry.get_sample_value(
            "streamops_messages_consumed_total", {"service": "t", "topic": "in"}
        )
        == 3
    )
    produced = {"service": "t", "topic": "out"}
    assert registry.get_sample_value("streamops_messages_produced_total", produced) == 3


def test_outputs_are_counted_only_once_delivered():
    runner, _log, registry = make(Upper(), fail=True)
    with pytest.raises(FatalError):
        runner.process([Msg("in", 0, 5, b"a")])
    produced = {"service": "t", "topic": "out"}
    assert not registry.get_sample_value("streamops_messages_produced_total", produced)


def test_poison_goes_to_the_dead_letter_topic_in_the_same_batch():
    runner, log, registry = make(Upper())
    runner.process([Msg("in", 0, 1, b"a"), Msg("in", 0, 2, b"bad!")])
    produced = [(e[1], e[2]) for e in log if e[0] == "produce"]
    assert ("out", b"A") in produced
    dead = [v for t, v in produced if t == "dlq"]
    assert len(dead) == 1 and b"bad!" in dead[0] and b"not_avro" in dead[0]
    assert log[-1] == ("commit", [("in", 0, 3)])
    assert (
        registry.get_sample_value(
            "streamops_deadletter_total", {"service": "t", "topic": "in", "reason": "not_avro"}
        )
        == 1
    )


def test_a_message_that_keeps_failing_is_isolated_and_dead_lettered():
    handler = Upper(fail_on=b"boom")
    runner, log, _ = make(handler)
    runner.process([Msg("in", 0, 1, b"a"), Msg("in", 0, 2, b"boom"), Msg("in", 0, 3, b"c")])
    produced = [(e[1], e[2]) for e in log if e[0] == "produce"]
    assert [v for t, v in produced if t == "out"] == [b"A", b"C"]
    dead = [v for t, v in produced if t == "dlq"]
    assert len(dead) == 1 and b"handler_failed" in dead[0]


def test_undelivered_outputs_stop_the_process_without_committing():
    runner, log, _ = make(Upper(), fail=True)
    with pytest.raises(FatalError, match="not delivered"):
        runner.process([Msg("in", 0, 1, b"a")])
    assert not [e for e in log if e[0] == "commit"]


def test_rejections_from_the_handler_are_dead_lettered():
    class RejectAll:
        def handle(self, batch):
            return [Rejected(m, Reason.SCHEMA_MISMATCH, "no such feature") for m in batch]

    runner, log, _ = make(RejectAll())
    runner.process([Msg("in", 0, 1, b"a")])
    produced = [(e[1], e[2]) for e in log if e[0] == "produce"]
    assert len(produced) == 1 and produced[0][0] == "dlq" and b"schema_mismatch" in produced[0][1]


def test_stop_event_ends_the_loop():
    class IdleConsumer(FakeConsumer):
        def subscribe(self, topics, on_revoke=None):
            self.log.append(("subscribe", topics))

        def consume(self, num_messages, timeout):
            stop.set()
            return []

        def close(self):
            self.log.append(("close",))

    stop = threading.Event()
    log: list = []
    runner = Runner(
        RunnerConfig(service="t", topics=("in",)),
        IdleConsumer(log),
        FakeProducer(log),
        decoder,
        Upper(),
        DeadLetterWriter("dlq", "t", lambda n, r: b""),
        StandardMetrics(CollectorRegistry(), "t"),
    )
    runner.run(stop)
    assert log[0] == ("subscribe", ["in"]) and log[-1] == ("close",)


def test_poison_raised_by_the_handler_is_pinned_to_its_message():
    class PickyHandler:
        def handle(self, batch):
            if any(m.value == b"nan" for m in batch):
                raise PoisonMessage(Reason.NON_FINITE, "feature x is NaN")
            return [Outbound("out", m.key, m.value) for m in batch]

    runner, log, _ = make(PickyHandler())
    runner.process([Msg("in", 0, 1, b"a"), Msg("in", 0, 2, b"nan")])
    produced = [(e[1], e[2]) for e in log if e[0] == "produce"]
    assert [v for t, v in produced if t == "out"] == [b"a"]
    dead = [v for t, v in produced if t == "dlq"]
    assert len(dead) == 1 and b"non_finite" in dead[0]


def test_a_message_too_slow_three_times_is_dead_lettered_and_others_flow():
    import time as _time

    class SlowOn:
        def handle(self, batch):
            if any(m.value == b"slow" for m in batch):
                _time.sleep(0.06)
            return [Outbound("out", m.key, m.value) for m in batch]

    from confluent_kafka import KafkaError, KafkaException

    class EvictedConsumer(FakeConsumer):
        evicted = True

        def commit(self, offsets=None, asynchronous=True):
            if self.evicted:  # the slow batch outlasted max.poll.interval.ms
                raise KafkaException(KafkaError(KafkaError.UNKNOWN_MEMBER_ID))
            super().commit(offsets=offsets, asynchronous=asynchronous)

    runner, log, _ = make(SlowOn())
    runner.consumer = consumer = EvictedConsumer(log)
    runner.config = dataclasses.replace(runner.config, max_handle_s=0.03, handler_attempts=3)
    batch = [Msg("in", 0, 1, b"a"), Msg("in", 0, 2, b"slow"), Msg("in", 0, 3, b"c")]
    for _attempt in range(3):  # evicted: the refused commit brings the same batch back
        log.clear()
        runner.work(batch)
        runner.finish({("in", 0): (1, 3)})
    assert not [e for e in log if e[0] == "commit"]
    consumer.evicted = False
    outs = [e[2] for e in log if e[0] == "produce" and e[1] == "out"]
    assert outs == [b"slow", b"a", b"c"], "suspects alone first, then the rest"
    assert not [e for e in log if e[0] == "produce" and e[1] == "dlq"]
    log.clear()
    runner.work(batch)  # fourth delivery: slow 3 times already -> dead letter, not handled
    dead = [e[2] for e in log if e[0] == "produce" and e[1] == "dlq"]
    assert len(dead) == 1 and b"timeout" in dead[0] and b"slow" in dead[0]
    assert [e[2] for e in log if e[0] == "produce" and e[1] == "out"] == [b"a", b"c"]
    runner.finish({("in", 0): (1, 3)})
    assert runner._slow == {}


def test_a_commit_refused_mid_rebalance_is_retried_in_the_revoke_callback():
    from confluent_kafka import KafkaError, KafkaException, TopicPartition

    class RebalancingConsumer(FakeConsumer):
        refuse = True

        def commit(self, offsets=None, asynchronous=True):
            if self.refuse:
                raise KafkaException(KafkaError(KafkaError.REBALANCE_IN_PROGRESS))
            super().commit(offsets=offsets, asynchronous=asynchronous)

    runner, log, _ = make(Upper())
    runner.consumer = consumer = RebalancingConsumer(log)
    runner.process([Msg("in", 0, 5, b"a"), Msg("in", 1, 9, b"b")])
    assert not [e for e in log if e[0] == "commit"]
    consumer.refuse = False
    runner._on_revoke(consumer, [TopicPartition("in", 1)])
    assert log[-1] == ("commit", [("in", 1, 10)])
    runner.process([Msg("in", 0, 6, b"c")])
    assert log[-1] == ("commit", [("in", 0, 7)])


class LagConsumer(FakeConsumer):
    """Assignment, positions and cached watermarks as librdkafka keeps them locally."""

    def __init__(self, log, assigned, positions, highs):
        super().__init__(log)
        self.assigned, self.positions, self.highs = assigned, positions, highs

    def assignment(self):
        from confluent_kafka import TopicPartition

        return [TopicPartition(t, p) for t, p in self.assigned]

    def position(self, partitions):
        from confluent_kafka import TopicPartition

        return [
            TopicPartition(
                tp.topic, tp.partition, self.positions.get((tp.topic, tp.partition), -1001)
            )
            for tp in partitions
        ]

    def get_watermark_offsets(self, tp, timeout=None, cached=False):
        self.log.append(("watermarks", tp.topic, tp.partition, cached))
        marks = self.highs.get((tp.topic, tp.partition), -1001)
        return marks if isinstance(marks, tuple) else (0, marks)


def _lag(registry, topic, partition):
    return registry.get_sample_value(
        "streamops_consumer_lag", {"service": "t", "topic": topic, "partition": str(partition)}
    )


def test_lag_is_the_high_watermark_minus_the_position_of_each_assigned_partition():
    runner, log, registry = make(Upper())
    consumer = LagConsumer(
        log,
        assigned=[("in", 0), ("in", 1), ("in", 2), ("in", 3), ("in", 4)],
        # 2, 3: nothing consumed since assignment; 4: no fetch response yet
        positions={("in", 0): 40, ("in", 1): 7},
        highs={("in", 0): 100, ("in", 1): 7, ("in", 2): 5, ("in", 3): (12, 12)},
    )
    runner.lag.update(consumer)
    assert _lag(registry, "in", 0) == 60
    assert _lag(registry, "in", 1) == 0
    assert _lag(registry, "in", 2) is None, "unknown position: no series rather than a guess"
    assert _lag(registry, "in", 3) == 0, "an empty partition has no lag, whatever the position"
    assert _lag(registry, "in", 4) is None
    watermark_calls = [e for e in log if e[0] == "watermarks"]
    assert watermark_calls and all(cached for *_rest, cached in watermark_calls)


def test_lag_is_refreshed_at_most_once_per_interval():
    runner, log, registry = make(Upper())
    now = [100.0]
    runner.lag.clock = lambda: now[0]
    consumer = LagConsumer(log, [("in", 0)], {("in", 0): 1}, {("in", 0): 11})
    assert runner.lag.maybe_update(consumer)
    consumer.highs[("in", 0)] = 21
    now[0] += 0.5
    assert not runner.lag.maybe_update(consumer)
    assert _lag(registry, "in", 0) == 10
    now[0] += 0.5
    assert runner.lag.maybe_update(consumer)
    assert _lag(registry, "in", 0) == 20
    assert len([e for e in log if e[0] == "watermarks"]) == 2


def test_lag_series_go_when_partitions_are_revoked_or_no_longer_assigned():
    from confluent_kafka import TopicPartition

    runner, log, registry = make(Upper())
    consumer = LagConsumer(
        log, [("in", 0), ("in", 1)], {("in", 0): 1, ("in", 1): 1}, {("in", 0): 5, ("in", 1): 9}
    )
    runner.consumer = consumer
    runner.lag.update(consumer)
    runner._on_revoke(consumer, [TopicPartition("in", 1)])
    assert _lag(registry, "in", 0) == 4 and _lag(registry, "in", 1) is None
    consumer.assigned = [("in", 1)]  # lost partition 0 without a revoke; got 1 back
    runner.lag.update(consumer)
    assert _lag(registry, "in", 0) is None and _lag(registry, "in", 1) == 8


def test_the_loop_measures_lag_and_a_failing_measurement_does_not_stop_it(caplog):
    class LoopConsumer(LagConsumer):
        rounds = 0

        def subscribe(self, topics, on_revoke=None):
            pass

        def consume(self, num_messages, timeout):
            if num_messages < 500:  # the runner's call to fill a batch: nothing more
                return []
            self.rounds += 1
            if self.rounds == 3:
                stop.set()
            return [Msg("in", 0, self.rounds, b"a")]

        def get_watermark_offsets(self, tp, timeout=None, cached=False):
            if self.rounds == 2:
                raise RuntimeError("consumer closed")
            return super().get_watermark_offsets(tp, timeout, cached)

        def close(self):
            pass

    stop = threading.Event()
    runner, log, registry = make(Upper())
    runner.consumer = LoopConsumer(log, [("in", 0)], {("in", 0): 2}, {("in", 0): 50})
    runner.lag.interval_s = 0.0
    runner.run(stop)
    assert runner.batches == 3
    assert _lag(registry, "in", 0) == 48
    assert "consumer lag not measured" in caplog.text


def test_a_commit_deferred_by_a_rebalance_is_settled_before_a_clean_stop_closes():
    from confluent_kafka import KafkaError, KafkaException

    class RebalancingConsumer(FakeConsumer):
        refusals = 3  # the first batch's commit, then two retries while shutting down

        def commit(self, offsets=None, asynchronous=True):
            if self.refusals:
                self.refusals -= 1
                raise KafkaException(KafkaError(KafkaError.ILLEGAL_GENERATION))
            super().commit(offsets=offsets, asynchronous=asynchronous)

        def consume(self, num_messages=1, timeout=-1):
            self.log.append(("served rebalance",))
            return []

        def close(self):
            self.log.append(("close",))

    runner, log, _ = make(Upper())
    runner.consumer = RebalancingConsumer(log)
    runner.process([Msg("in", 0, 5, b"a")])
    assert not [e for e in log if e[0] == "commit"]
    runner._shutdown()
    commits = [e for e in log if e[0] == "commit"]
    assert commits == [("commit", [("in", 0, 6)])], log
    assert log[-1] == ("close",) and log.index(commits[0]) < len(log) - 1


class QueueConsumer(FakeConsumer):
    """Hands out what is queued; records each consume call's size and timeout."""

    def __init__(self, log, queued):
        super().__init__(log)
        self.queued = list(queued)

    def consume(self, num_messages, timeout):
        self.log.append(("consume", num_messages, timeout))
        taken, self.queued = self.queued[:num_messages], self.queued[num_messages:]
        return taken


def test_a_batch_takes_what_has_arrived_without_waiting():
    runner, log, _ = make(Upper())
    runner.consumer = QueueConsumer(log, [Msg("in", 0, i, b"a") for i in range(3)])
    runner.config = dataclasses.replace(runner.config, max_wait_s=0.0, idle_wait_s=0.5)
    assert len(runner.next_batch()) == 3
    assert log == [("consume", 500, 0), ("consume", 497, 0.0)]
    log.clear()
    assert runner.next_batch() == []
    assert log == [("consume", 500, 0), ("consume", 1, 0.5)]  # waits for a first message only


class ModeConsumer(FakeConsumer):
    """Records whether each commit was asynchronous."""

    def __init__(self, log):
        super().__init__(log)
        self.modes = []

    def commit(self, offsets=None, asynchronous=True):
        self.modes.append(asynchronous)
        super().commit(offsets=offsets, asynchronous=asynchronous)


def test_a_commit_interval_holds_offsets_until_it_elapses_or_the_stream_is_quiet():
    runner, log, _ = make(Upper())
    runner.consumer = consumer = ModeConsumer(log)
    runner.config = dataclasses.replace(runner.config, commit_interval_s=60.0)
    runner.process([Msg("in", 0, 1, b"a")])
    runner.process([Msg("in", 0, 2, b"b")])
    runner.process([Msg("in", 1, 7, b"c")])
    kinds = [e[0] for e in log]
    # The first batch is flushed and committed without waiting for the commit; the next two
    # go out without a flush, their offsets held back.
    assert kinds == ["produce", "flush", "commit", "produce", "produce"], log
    assert log[2] == ("commit", [("in", 0, 2)]) and consumer.modes == [True]
    runner._commit_delivered()  # what the loop does when nothing arrived
    assert [e[0] for e in log[5:]] == ["flush", "commit"], "delivered before committed"
    # Waited for this time, with the unconfirmed first commit sent again.
    assert log[-1] == ("commit", [("in", 0, 3), ("in", 1, 8)]) and consumer.modes[-1] is False
    runner._commit_delivered()
    assert log[-1] == ("commit", [("in", 0, 3), ("in", 1, 8)]), "nothing left: no new commit"
    assert len(consumer.modes) == 2


def test_outputs_undelivered_under_an_interval_stop_the_runner_before_any_commit():
    runner, log, registry = make(Upper(), fail=True)
    runner.consumer = ModeConsumer(log)
    runner.config = dataclasses.replace(runner.config, commit_interval_s=60.0)
    runner._last_commit = time.monotonic()  # the interval has just begun
    runner.process([Msg("in", 0, 1, b"a")])
    assert [e[0] for e in log] == ["produce"]
    with pytest.raises(FatalError):
        runner._commit_delivered()
    assert not [e for e in log if e[0] == "commit"]
    produced = {"service": "t", "topic": "out"}
    assert not registry.get_sample_value("streamops_messages_produced_total", produced)


def test_a_stop_with_undelivered_outputs_commits_only_what_was_delivered():
    runner, log, _ = make(Upper())
    runner.consumer = consumer = ModeConsumer(log)
    consumer.close = lambda: log.append(("close",))
    runner.config = dataclasses.replace(runner.config, commit_interval_s=60.0)
    runner.process([Msg("in", 0, 1, b"a")])  # flushed and committed (asynchronously)
    runner.producer.fail = True
    runner.process([Msg("in", 0, 2, b"b")])  # its output will fail
    runner._shutdown()
    assert log[-2] == ("commit", [("in", 0, 2)]), "the delivered batch only, waited for"
    assert consumer.modes == [True, False] and log[-1] == ("close",)
    from confluent_kafka import TopicPartition

    runner._on_revoke(consumer, [TopicPartition("in", 0)])  # as a rebalance while stopping
    assert log[-1] == ("close",), "the failed outputs are neither flushed again nor committed"


def test_a_revoke_commits_its_partitions_delivered_and_unconfirmed_offsets():
    from confluent_kafka import TopicPartition

    runner, log, _ = make(Upper())
    runner.consumer = consumer = ModeConsumer(log)
    runner.config = dataclasses.replace(runner.config, commit_interval_s=60.0)
    runner.process([Msg("in", 0, 1, b"a"), Msg("in", 1, 4, b"b")])  # committed asynchronously
    runner.process([Msg("in", 1, 5, b"c")])  # not yet flushed
    log.clear()
    runner._on_revoke(consumer, [TopicPartition("in", 1)])
    assert log == [("flush",), ("commit", [("in", 1, 6)])] and consumer.modes[-1] is False
    log.clear()
    runner._commit_delivered()  # partition 0's asynchronous commit is confirmed now
    assert log == [("commit", [("in", 0, 2)])]


class RevokingConsumer(FakeConsumer):
    """Hands out queued batches; the second consume call serves a revoke of partition 1."""

    def __init__(self, log, runner, batches):
        super().__init__(log)
        self.runner, self.batches, self.calls = runner, list(batches), 0
        self.owned = [("in", 0), ("in", 1)]

    def consume(self, num_messages, timeout):
        from confluent_kafka import TopicPartition

        self.calls += 1
        if self.calls == 2:
            self.owned = [("in", 0)]
            self.runner._on_revoke(self, [TopicPartition("in", 1)])
        return self.batches.pop(0) if self.batches else []

    def assignment(self):
        from confluent_kafka import TopicPartition

        return [TopicPartition(t, p) for t, p in self.owned]


def test_messages_of_a_partition_revoked_while_the_batch_is_taken_are_not_handled():
    runner, log, _ = make(Upper())
    first = [Msg("in", 0, 5, b"a"), Msg("in", 1, 9, b"b")]
    runner.consumer = RevokingConsumer(log, runner, [first, [Msg("in", 0, 6, b"c")]])
    batch = runner.next_batch()
    assert [(m.partition(), m.offset()) for m in batch] == [(0, 5), (0, 6)]
    runner.process(batch)
    assert [e[2] for e in log if e[0] == "produce"] == [b"A", b"C"]
    assert [e for e in log if e[0] == "commit"] == [("commit", [("in", 0, 7)])]
    runner.consumer.batches = [[Msg("in", 0, 7, b"d")]]
    assert len(runner.next_batch()) == 1, "a batch without a revoke is not filtered"


class RefusingConsumer(FakeConsumer):
    """Refuses the first `refusals` commits with `code`."""

    def __init__(self, log, code, refusals):
        super().__init__(log)
        self.code, self.refusals, self.attempts = code, refusals, 0

    def commit(self, offsets=None, asynchronous=True):
        from confluent_kafka import KafkaError, KafkaException

        self.attempts += 1
        if self.refusals:
            self.refusals -= 1
            raise KafkaException(KafkaError(self.code))
        super().commit(offsets=offsets, asynchronous=asynchronous)


def test_a_revoke_retries_a_commit_refused_mid_rebalance_while_it_still_owns_them(monkeypatch):
    from confluent_kafka import KafkaError, TopicPartition

    import services.common.runner as runner_module

    monkeypatch.setattr(runner_module, "REVOKE_COMMIT_RETRY_S", 0.0)
    runner, log, _ = make(Upper())
    runner.consumer = consumer = RefusingConsumer(log, KafkaError.REBALANCE_IN_PROGRESS, 1)
    runner.process([Msg("in", 0, 5, b"a"), Msg("in", 1, 9, b"b")])  # the batch's commit deferred
    consumer.refusals = 2  # and the revoke's first two attempts
    runner._on_revoke(consumer, [TopicPartition("in", 1)])
    assert consumer.attempts == 4 and log[-1] == ("commit", [("in", 1, 10)])
    assert runner._pending == {("in", 0): 6}


def test_offsets_a_revoke_could_not_commit_are_left_to_the_new_owner():
    from confluent_kafka import KafkaError, TopicPartition

    runner, log, registry = make(Upper())
    runner.consumer = consumer = RefusingConsumer(log, KafkaError.ILLEGAL_GENERATION, 2)
    runner.process([Msg("in", 0, 5, b"a"), Msg("in", 1, 9, b"b")])  # deferred
    runner._on_revoke(consumer, [TopicPartition("in", 1)])  # refused for good: not retried
    assert consumer.attempts == 2 and not [e for e in log if e[0] == "commit"]
    runner._commit_delivered()
    # Partition 1 moved on: committing offset 10 for it now could move its new owner back.
    assert [e for e in log if e[0] == "commit"] == [("commit", [("in", 0, 6)])]
    errors = {"service": "t", "category": "commit"}
    assert registry.get_sample_value("streamops_errors_total", errors) == 1


def test_a_consumer_fenced_after_a_broker_restart_ends_the_process():
    """librdkafka reports a fenced static member with the code _FATAL while its fatal() says
    False: the runner must exit (to be restarted), not keep polling a dead consumer (R1)."""
    from confluent_kafka import KafkaError

    runner, _log, _registry = make(Upper())
    fenced = KafkaError(KafkaError._FATAL, "FENCED_INSTANCE_ID")
    assert not fenced.fatal()
    with pytest.raises(FatalError, match="FENCED_INSTANCE_ID"):
        runner._on_consume_error(fenced)
