"""Hostile input (R19) shared by tests: the exact payloads of issue 27 and hypothesis strategies.

``HOSTILE_EVENTS`` and ``HOSTILE_ACTUALS`` are the JSON messages that crashed a consumer before,
each with the reason it must now be dead-lettered with. The strategies make random bytes,
mutations of valid single-object messages (bit flips, truncation, appended bytes) and hostile
JSON (deep nesting, huge numbers, NaN/Infinity/1e30 in every numeric field, wrong types, huge
strings, far-future times), for fuzzing any consumer's decode-and-handle path.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from services.common.errors import Reason
from services.common.metrics import StandardMetrics
from services.drift.app import DriftLoop
from services.drift.config import DriftSettings
from services.drift.drift_metrics import DriftMetrics
from services.drift.join_store import JoinStore
from services.drift.reference import ReferenceBook
from services.drift.state_store import Snapshot
from tests.record_fuzz import mutated_bytes

# The times a far-future case uses: the year 2300, well within a long and ISO-8601.
FAR_FUTURE_MS = 10_413_792_000_000


def deep_json(field: str, depth: int) -> bytes:
    """A JSON object whose ``field`` is ``depth`` nested arrays (RecursionError in json.loads)."""
    return b'{"%s":' % field.encode() + b"[" * depth + b"]" * depth + b"}"


def _event_json(time_literal: str, aid: str = "h1", deployment: str = "d") -> bytes:
    return (
        f'{{"association_id":"{aid}","deployment":"{deployment}",'
        f'"event_time":{time_literal},"features":{{"x":0.5}}}}'
    ).encode()


def _actual_json(time_literal: str, aid: str = "h1", deployment: str = "d") -> bytes:
    return (
        f'{{"association_id":"{aid}","deployment":"{deployment}","label":"1",'
        f'"actual_time":{time_literal}}}'
    ).encode()


# The inputs, exactly: name -> (bytes, reason). The 100,000-deep document is over the
# per-record size limit, so it is refused before parsing; a nesting within the limit reaches
# json.loads, which raised RecursionError.
HOSTILE_EVENTS: dict[str, tuple[bytes, Reason]] = {
    "deep_nesting_100k": (
        b'{"association_id":' + b"[" * 100_000 + b"]" * 100_000 + b"}",
        Reason.OVERSIZE,
    ),
    "deep_nesting_in_limit": (deep_json("association_id", 30_000), Reason.INVALID_JSON),
    "deep_nesting_unclosed": (b'{"association_id":' + b"[" * 30_000, Reason.INVALID_JSON),
    "event_time_nan": (_event_json("NaN"), Reason.NON_FINITE),
    "event_time_infinity": (_event_json("Infinity"), Reason.NON_FINITE),
    "event_time_minus_infinity": (_event_json("-Infinity"), Reason.NON_FINITE),
    "event_time_1e30": (_event_json("1e30"), Reason.OUT_OF_RANGE),
    "event_time_huge_int": (_event_json("9" * 30), Reason.OUT_OF_RANGE),
    "feature_huge_int": (
        b'{"association_id":"h","deployment":"d","features":{"x":' + b"9" * 400 + b"}}",
        Reason.OUT_OF_RANGE,
    ),
    "lone_surrogate_id": (
        b'{"association_id":"\\ud800","deployment":"d","features":{}}',
        Reason.WRONG_TYPE,
    ),
}
HOSTILE_ACTUALS: dict[str, tuple[bytes, Reason]] = {
    "deep_nesting_in_limit": (deep_json("association_id", 8_000), Reason.INVALID_JSON),
    "actual_time_nan": (_actual_json("NaN"), Reason.NON_FINITE),
    "actual_time_infinity": (_actual_json("Infinity"), Reason.NON_FINITE),
    "actual_time_1e30": (_actual_json("1e30"), Reason.OUT_OF_RANGE),
    "label_huge_int": (
        b'{"association_id":"h","deployment":"d","label":' + b"9" * 400 + b"}",
        Reason.OUT_OF_RANGE,
    ),
}


def far_future_event(aid: str = "future", deployment: str = "d") -> bytes:
    """A valid JSON event timed in the year 2300."""
    return _event_json(str(FAR_FUTURE_MS), aid, deployment)


def far_future_actual(aid: str = "future", deployment: str = "d") -> bytes:
    """A valid JSON actual timed in the year 2300."""
    return _actual_json(str(FAR_FUTURE_MS), aid, deployment)


# -- strategies -----------------------------------------------------------------------------

HOSTILE_NUMBERS = st.sampled_from(
    [
        "NaN",
        "Infinity",
        "-Infinity",
        "1e30",
        "-1e30",
        "1e309",
        "9" * 400,
        "-" + "9" * 400,
        "9223372036854775808",
        "-9223372036854775809",
        str(FAR_FUTURE_MS),
        "0",
        "-1",
        "0.5",
        "1e-320",
    ]
)
WRONG_TYPES = st.sampled_from(['"text"', "true", "null", "[]", "{}", '[1,"a"]', '{"a":1}'])
HUGE_STRINGS = st.sampled_from(['"' + "a" * 70_000 + '"', '"' + "\\u00e9" * 5000 + '"'])
ANY_VALUE = st.one_of(HOSTILE_NUMBERS, WRONG_TYPES, HUGE_STRINGS, st.just('"\\udc80"'))


@st.composite
def hostile_json(draw: Any, kind: str) -> bytes:
    """A JSON FeatureEvent or Actual with one or more fields replaced by hostile values."""
    if kind == "FeatureEvent":
        fields = {
            "association_id": '"h"',
            "deployment": '"d"',
            "event_time": "1700000000000",
            "features": '{"x":0.5,"c":"a"}',
        }
        nested = ["features"]
    else:
        fields = {
            "association_id": '"h"',
            "deployment": '"d"',
            "label": '"1"',
            "actual_time": "1700000000000",
        }
        nested = []
    for name in draw(st.lists(st.sampled_from(sorted(fields)), min_size=1, max_size=3)):
        fields[name] = draw(ANY_VALUE)
    for name in nested:
        if draw(st.booleans()):
            fields[name] = f'{{"x":{draw(ANY_VALUE)},"c":{draw(ANY_VALUE)}}}'
    if draw(st.booleans()):
        fields["association_id"] = "[" * draw(st.integers(1, 5000)) + "1"
    text = "{" + ",".join(f'"{k}":{v}' for k, v in fields.items()) + "}"
    return text.encode()


# The byte mutations every fuzz test uses (bit flips, cuts, appended or spliced bytes).
mutated = mutated_bytes


def json_record(record: dict[str, Any]) -> bytes:
    """A record as the JSON people type (bytes values are not expected here)."""
    return json.dumps(record).encode()


# -- an in-memory drift loop ----------------------------------------------------------------
# The drift service's real loop (DriftLoop.step: decode, columns, time bounds, monitors, join,
# isolation, recovery) over in-memory stand-ins for the broker and Redis, so a fuzz test can
# run thousands of batches in seconds. Delivery and Redis semantics are proven elsewhere, on
# the real components (tests/integration).


class FakeMessage:
    """What a consumed confluent-kafka Message offers the loop."""

    def __init__(self, topic: str, partition: int, offset: int, key: bytes, value: bytes) -> None:
        self._t, self._p, self._o, self._k, self._v = topic, partition, offset, key, value

    def error(self) -> None:
        return None

    def topic(self) -> str:
        return self._t

    def partition(self) -> int:
        return self._p

    def offset(self) -> int:
        return self._o

    def key(self) -> bytes:
        return self._k

    def value(self) -> bytes:
        return self._v

    def timestamp(self) -> tuple[int, int]:
        return (1, 0)


class MemoryLog:
    """Topics as lists, read from per-partition positions; ``seek`` rewinds (a consumer)."""

    def __init__(self) -> None:
        self.logs: dict[tuple[str, int], list[tuple[bytes, bytes]]] = {}
        self.positions: dict[tuple[str, int], int] = {}

    def append(self, topic: str, value: bytes, key: bytes = b"k", partition: int = 0) -> int:
        """Add a message; its offset."""
        log = self.logs.setdefault((topic, partition), [])
        log.append((key, value))
        return len(log) - 1

    def consume(self, num_messages: int = 500, timeout: float = 0) -> list[FakeMessage]:
        out: list[FakeMessage] = []
        for tp, log in sorted(self.logs.items()):
            start = self.positions.get(tp, 0)
            for offset in range(start, min(len(log), start + num_messages - len(out))):
                out.append(FakeMessage(tp[0], tp[1], offset, *log[offset]))
            self.positions[tp] = start + sum(1 for m in out if (m.topic(), m.partition()) == tp)
        return out

    def seek(self, tp: Any) -> None:
        self.positions[(tp.topic, tp.partition)] = max(0, tp.offset)

    def pending(self) -> int:
        """Messages not read yet."""
        return sum(len(log) - self.positions.get(tp, 0) for tp, log in self.logs.items())

    def commit(self, offsets: Any = None, asynchronous: bool = True) -> None:
        return None


class MemoryProducer:
    """Keeps what was produced; delivery reports are served at poll and flush."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, Any, bytes]] = []
        self._reports: list[tuple[Any, FakeMessage]] = []

    def produce(
        self,
        topic: str,
        value: bytes,
        key: Any = None,
        headers: Any = None,
        on_delivery: Any = None,
    ) -> None:
        self.sent.append((topic, key, value))
        if on_delivery is not None:
            self._reports.append((on_delivery, FakeMessage(topic, 0, 0, b"", value)))

    def poll(self, _timeout: float = 0) -> int:
        reports, self._reports = self._reports, []
        for callback, msg in reports:
            callback(None, msg)
        return len(reports)

    def flush(self, _timeout: float = 0) -> int:
        self.poll()
        return 0


class MemoryLine:
    """The join store's Redis line: HMGET over hashes kept in memory."""

    def __init__(self) -> None:
        self.hashes: dict[str, dict[str, str]] = {}
        self._replies: dict[int, Any] = {}
        self._tickets = 0

    def send(self, *args: Any) -> int:
        assert args[0] == "HMGET", args[0]
        for arg in args:  # as the real line packs them: a string no UTF-8 encoder takes fails
            str(arg).encode()
        found = self.hashes.get(args[1], {})
        self._tickets += 1
        self._replies[self._tickets] = [found.get(i) for i in args[2:]]
        return self._tickets

    def reply(self, ticket: int) -> Any:
        return self._replies.pop(ticket)


class MemoryStore:
    """The drift state store in memory: a transaction lands when settled; ``load`` reads it."""

    def __init__(self, line: MemoryLine) -> None:
        self.line = line
        self.monitors: dict[str, str] = {}
        self.offsets: dict[tuple[str, int], int] = {}
        self._sent: Any = None

    def prepare(
        self, monitors: Any, offsets: Any, closed: Any = (), joins: Any = None, shared: Any = None
    ) -> Any:
        states = {name: json.dumps(state) for name, state in monitors.items()}
        for text in [*states, *states.values(), *(f"{t}|{p}" for t, p in offsets)]:
            text.encode()  # as the real store packs them
        return states, dict(offsets), [] if joins is None else list(joins.hashes)

    def send(self, write: Any) -> None:
        self.settle()
        self._sent = write

    def settle(self) -> None:
        sent, self._sent = self._sent, None
        if sent is not None:
            states, offsets, hashes = sent
            self.monitors.update(states)
            self.offsets.update(offsets)
            for key, _expiry, fields in hashes:
                pairs = zip(fields[::2], fields[1::2], strict=True)
                self.line.hashes.setdefault(key, {}).update(pairs)

    def load(self) -> Snapshot:
        monitors = {name: json.loads(raw) for name, raw in self.monitors.items()}
        return Snapshot(monitors, dict(self.offsets))


def drift_rig(
    records: list[dict[str, Any]],
    window_count: int = 0,
    batch_size: int = 10,
    **settings: Any,
) -> DriftLoop:
    """A DriftLoop over in-memory stand-ins, its ReferenceBook fed these control records
    (ModelPublished and Deployment), reading partition 0 of each input topic. Its ``log`` (a
    MemoryLog), ``producer``, ``store`` and ``registry`` are attributes."""
    config = DriftSettings(
        topic_prefix="fuzz.", window_count=window_count, batch_size=batch_size, **settings
    )
    book = ReferenceBook(config.window_seconds)
    for record in records:
        book.apply(record)
    registry = CollectorRegistry()
    log, producer, line = MemoryLog(), MemoryProducer(), MemoryLine()
    loop = DriftLoop(
        config,
        log,
        producer,
        book,
        MemoryStore(line),
        JoinStore(line, config.namespace, 3600),
        StandardMetrics(registry, "drift"),
        DriftMetrics(registry),
    )
    loop.assigned = {(t, 0) for t in (loop.events, loop.predictions, loop.actuals)}
    loop.log, loop.registry = log, registry
    return loop


def drain(loop: Any, most_steps: int = 1000) -> None:
    """Step the loop until every message is read and applied, then once more (quiet)."""
    for _ in range(most_steps):
        if not loop.log.pending():
            loop.step([])
            return
        loop.step(loop.log.consume(loop.settings.batch_size))
    raise AssertionError(f"still {loop.log.pending()} messages unread after {most_steps} steps")
