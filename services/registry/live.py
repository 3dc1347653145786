"""Live operational figures per deployment, from bounded samples of the busy topics.

The sampler reads at most a fixed number of records per partition per round from the tail of
`events`, `predictions` and `deadletter`, and measures each topic's total rate from its offsets.
A deployment's rate is the topic's rate times its share of the round's sample (exact when the
sample holds the whole round, an estimate when the topic outran it). Latency is the time from
the event to its prediction being produced (the Kafka timestamp of the prediction record minus
its `event_time`). Everything here is bounded and in memory: these are live telemetry, not the
system of record, so they are not part of the rebuildable view and refill within a few rounds.

>>> live = LiveStats(window_s=60)
>>> live.begin_round()
>>> for ms in (10, 20, 30, 40, 1000):
...     live.add_prediction("credit", served=True, latency_ms=ms, at_ms=5_000)
>>> live.add_event("credit", {"age": 30.0}, at_ms=5_000)
>>> live.end_round(5_000, {"predictions": 50.0, "events": 10.0, "deadletter": 0.0})
>>> point = live.latest("credit")
>>> point["latency_p50_ms"], point["predictions_per_s"], point["events_per_s"]
(30.0, 50.0, 10.0)
"""

from __future__ import annotations

import threading
from collections import Counter, OrderedDict, deque
from collections.abc import Mapping
from typing import Any

import numpy as np

from services.common import refused_sources
from services.common.refused_sources import Source

SYSTEM_STAGES = frozenset({"handle", "produce", "deliver"})  # not the input's fault
# What a per-deployment count is a share of: served rows and errors are shares of their topic.
_TOPIC_OF = {
    "events": "events",
    "served": "predictions",
    "deadletter": "deadletter",
    "errors": "deadletter",
    "bad_records": "deadletter",
    "record_errors": "deadletter",
}
# How many recent source records a dead letter is compared with to tell a new bad record from
# another service's refusal of one already counted (the scorer's and drift's of one event).
RECENT_SOURCES = 20_000


def _answers(values: list[str | float]) -> dict[str, Any] | None:
    """The round's served answers: class shares, or value quantiles for regression."""
    if not values:
        return None
    labels = [v for v in values if isinstance(v, str)]
    if labels:
        return {"classes": {k: n / len(labels) for k, n in sorted(Counter(labels).items())}}
    q = np.percentile(np.asarray(values, dtype=float), [10, 50, 90])
    return {"quantiles": {"p10": float(q[0]), "p50": float(q[1]), "p90": float(q[2])}}


class _Deployment:
    """Bounded samples and the figures series of one deployment."""

    def __init__(self, latencies: int, values: int, history: int) -> None:
        self.latencies: deque[tuple[int, float]] = deque(maxlen=latencies)
        self.features: deque[Mapping[str, Any]] = deque(maxlen=values)
        self.series: deque[dict[str, Any]] = deque(maxlen=history)


class LiveStats:
    """Per-deployment latency percentiles, rates and recent feature values (thread-safe)."""

    def __init__(
        self,
        window_s: float = 60.0,
        history: int = 180,
        latencies: int = 5000,
        values: int = 2000,
        reasons: int = 1000,
    ) -> None:
        self.window_ms = int(window_s * 1000)
        self._sizes = (latencies, values, history)
        self._lock = threading.Lock()
        self._deps: dict[str, _Deployment] = {}
        self._round: dict[str, Counter[str]] = {}
        self._seen: Counter[str] = Counter()
        self._answers: dict[str, list[str | float]] = {}
        self._reasons: deque[tuple[int, str, str, Source | None, str]] = deque(maxlen=reasons)
        self._recent: OrderedDict[Source, None] = OrderedDict()
        self.topic_rates: dict[str, float | None] = {}
        self.rounds = 0

    def _dep(self, name: str) -> _Deployment:
        found = self._deps.get(name)
        if found is None:
            found = self._deps[name] = _Deployment(*self._sizes)
        return found

    def begin_round(self) -> None:
        """Start counting a new round's sample."""
        with self._lock:
            self._round = {}
            self._seen = Counter()
            self._answers = {}

    def _count(self, deployment: str | None, what: str) -> None:
        self._seen[what] += 1
        if deployment is not None:
            self._round.setdefault(deployment, Counter())[what] += 1

    def add_prediction(
        self,
        deployment: str | None,
        served: bool,
        latency_ms: float,
        at_ms: int,
        prediction: str | float | None = None,
    ) -> None:
        """One sampled prediction row (`deployment` None: not a known deployment)."""
        with self._lock:
            self._count(deployment, "predictions")
            if deployment is not None and served:
                self._round[deployment]["served"] += 1
                self._dep(deployment).latencies.append((at_ms, float(latency_ms)))
                if prediction is not None:
                    self._answers.setdefault(deployment, []).append(prediction)

    def add_event(self, deployment: str | None, features: Mapping[str, Any], at_ms: int) -> None:
        """One sampled input event."""
        with self._lock:
            self._count(deployment, "events")
            if deployment is not None:
                self._dep(deployment).features.append(features)

    def add_deadletter(
        self,
        deployment: str | None,
        service: str,
        stage: str,
        reason: str,
        at_ms: int,
        source: Source | None = None,
    ) -> None:
        """One sampled dead letter (`deployment` None when it cannot be attributed).

        `source` is the refused record's (topic, partition, offset): letters from several
        services for one record are counted once among `bad_records`.
        """
        with self._lock:
            self._count(deployment, "deadletter")
            new = source is None or source not in self._recent
            if source is not None:
                self._recent[source] = None
                self._recent.move_to_end(source)
                while len(self._recent) > RECENT_SOURCES:
                    self._recent.popitem(last=False)
            if new:
                self._count(deployment, "bad_records")
            if deployment is not None and stage in SYSTEM_STAGES:
                self._round[deployment]["errors"] += 1
                if new:
                    self._round[deployment]["record_errors"] += 1
            self._reasons.append((at_ms, f"{service}/{stage}", reason, source, service))

    def end_round(self, now_ms: int, rates: Mapping[str, float | None]) -> None:
        """Turn the round's sample and the topics' rates into one point per deployment."""
        with self._lock:
            self.topic_rates = dict(rates)
            self.rounds += 1
            for name in set(self._deps) | set(self._round):
                counts = self._round.get(name, Counter())
                self._dep(name).series.append(self._point(name, counts, now_ms, rates))

    def _share(self, counts: Counter[str], what: str, rates: Mapping[str, float | None]) -> float:
        topic = _TOPIC_OF[what]
        total, seen = rates.get(topic), self._seen[topic]
        if not total or not seen:
            return 0.0
        return float(total) * counts[what] / seen

    def _point(
        self, name: str, counts: Counter[str], now_ms: int, rates: Mapping[str, float | None]
    ) -> dict[str, Any]:
        recent = [ms for at, ms in self._deps[name].latencies if at >= now_ms - self.window_ms]
        p50 = p99 = None
        if recent:
            p50, p99 = (float(v) for v in np.percentile(recent, [50, 99]))
        events = self._share(counts, "events", rates)
        dead = self._share(counts, "deadletter", rates)
        # Rates are of bad source records, not of letters: one event refused by the scorer and
        # by drift is one bad event.
        bad = self._share(counts, "bad_records", rates)
        errors = self._share(counts, "record_errors", rates)
        offered = events + bad
        return {
            "t": now_ms,
            "events_per_s": events,
            "predictions_per_s": self._share(counts, "served", rates),
            "deadletters_per_s": dead,
            "bad_records_per_s": bad,
            "deadletter_rate": bad / offered if offered else 0.0,
            "error_rate": errors / offered if offered else 0.0,
            "latency_p50_ms": p50,
            "latency_p99_ms": p99,
            "latency_samples": len(recent),
            "answers": _answers(self._answers.get(name, [])),
        }

    def latest(self, name: str) -> dict[str, Any] | None:
        """The newest point of a deployment, or None before its first round."""
        with self._lock:
            dep = self._deps.get(name)
            return dict(dep.series[-1]) if dep and dep.series else None

    def series(self, name: str) -> list[dict[str, Any]]:
        """Every kept point of a deployment, oldest first."""
        with self._lock:
            dep = self._deps.get(name)
            return [dict(p) for p in dep.series] if dep else []

    def feature_values(self, name: str, feature: str) -> list[Any]:
        """The recent sampled values of one feature of a deployment (None = missing)."""
        with self._lock:
            dep = self._deps.get(name)
            return [f.get(feature) for f in dep.features] if dep else []

    def deadletter_reasons(self, since_ms: int) -> dict[str, int]:
        """Sampled dead letters since `since_ms`, by `service/stage reason`."""
        with self._lock:
            found = Counter(
                f"{where} {why}" for at, where, why, *_ in self._reasons if at >= since_ms
            )
        return dict(found.most_common())

    def deadletter_sources(self, since_ms: int) -> dict[str, Any]:
        """Sampled dead letters since `since_ms` grouped by source record (see refused_sources)."""
        with self._lock:
            letters = [
                {
                    "source_topic": src[0],
                    "source_partition": src[1],
                    "source_offset": src[2],
                    "service": service,
                    "reason": why,
                    "stage": where.partition("/")[2],
                    "failed_at": at,
                }
                for at, where, why, src, service in self._reasons
                if at >= since_ms and src is not None
            ]
        return refused_sources.counts(refused_sources.group(letters))
