"""The demo's traffic: credit events at a bounded rate, delayed actuals, and injected drift.

Built on the trainer's builtin credit stream (river's Agrawal generator, perturbation 0), so the
same seed gives the same features whichever labelling function is used:

- from event ``data_drift_at`` on, ``loan`` moves up by ``LOAN_SHIFT`` (about 0.7 of its
  standard deviation). No labelling function used here reads ``loan``, so this is data drift
  that should alert but not hurt accuracy;
- from event ``concept_drift_at`` on, labels come from Agrawal function 2 instead of 0: the
  inputs look the same but the rule changed (concept drift), so only the actuals reveal it.

Each event's actual is produced ``label_delay_s`` after the event. A few malformed events (a JSON
event whose features are not a map) are sent at fixed positions to show dead-lettering. Event
times are wall-clock milliseconds, so windows and detection times line up with the timeline.
"""

from __future__ import annotations

import bisect
import collections
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

from confluent_kafka import Producer

from services.common import serde
from services.common.producing import produce_waiting
from services.trainer.credit import credit_rows

LOAN_SHIFT = 100_000.0
CONCEPT_FUNCTION = 2
STREAM_SEED = 7  # not the training seed (42): the live rows are new to the model


class DemoStream:
    """Produces the demo's events and actuals on a background thread until stopped."""

    def __init__(
        self,
        producer_conf: dict[str, Any],
        events_topic: str,
        actuals_topic: str,
        *,
        deployment: str,
        rate: float,
        label_delay_s: float,
        data_drift_at: int,
        concept_drift_at: int,
        malformed_at: tuple[int, ...] = (),
        run_id: str = "demo",
    ) -> None:
        self.producer = Producer(producer_conf)
        self.events_topic, self.actuals_topic = events_topic, actuals_topic
        self.deployment, self.rate, self.label_delay_s = deployment, rate, label_delay_s
        self.data_drift_at, self.concept_drift_at = data_drift_at, concept_drift_at
        self._bad_left = set(malformed_at)
        self.run_id = run_id
        self.sent = 0  # valid events produced
        self.malformed = 0
        self.actuals_sent = 0
        self.times: list[int] = []  # event time of valid event i (non-decreasing)
        self.errors: list[str] = []
        self._pending: collections.deque[tuple[float, str, str]] = collections.deque()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="demo-stream", daemon=True)

    # -- what happened -----------------------------------------------------------------------

    def injected_at_ms(self, index: int) -> int | None:
        """Event time of valid event `index`, once it was produced."""
        return self.times[index] if index < len(self.times) else None

    def events_until(self, time_ms: int) -> int:
        """How many valid events had an event time before `time_ms`."""
        return bisect.bisect_left(self.times, time_ms)

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> DemoStream:
        """Start producing."""
        self._thread.start()
        return self

    def stop(self, flush_actuals: bool = False) -> None:
        """Stop producing; optionally send the actuals still waiting for their delay."""
        self._stop.set()
        self._thread.join(30)
        if flush_actuals:
            while self._pending:
                self._send_actual(*self._pending.popleft()[1:])
        if self.producer.flush(30):
            self.errors.append("some records were not acknowledged within 30 s")

    def alive(self) -> bool:
        """True while the producing thread runs."""
        return self._thread.is_alive()

    # -- producing ---------------------------------------------------------------------------

    def _rows(self) -> Iterator[tuple[dict[str, Any], str]]:
        before = credit_rows(10**9, seed=STREAM_SEED, function=0)
        after = credit_rows(10**9, seed=STREAM_SEED, function=CONCEPT_FUNCTION)
        for i, ((features, label0), (_, label2)) in enumerate(zip(before, after, strict=True)):
            if i >= self.data_drift_at:
                features["loan"] = features["loan"] + LOAN_SHIFT
            yield features, (label2 if i >= self.concept_drift_at else label0)

    def _on_delivery(self, err: Any, _msg: Any) -> None:
        if err is not None and len(self.errors) < 20:
            self.errors.append(str(err))

    def _send_event(self, index: int, features: dict[str, Any], now_ms: int) -> str:
        aid = f"{self.run_id}-{index}"
        record = {
            "association_id": aid,
            "deployment": self.deployment,
            "event_time": now_ms,
            "features": features,
            "attributes": {"phase": self._phase(index)},
        }
        self._send(self.events_topic, "FeatureEvent", record)
        return aid

    def _send(self, topic: str, name: str, record: dict[str, Any]) -> None:
        produce_waiting(
            self.producer,
            topic,
            serde.encode(name, record),
            record["association_id"],
            headers=[serde.fingerprint_header(name)],
            on_delivery=self._on_delivery,
        )

    def _phase(self, index: int) -> str:
        if index >= self.concept_drift_at:
            return "concept_drift"
        return "data_drift" if index >= self.data_drift_at else "baseline"

    def _send_malformed(self, n: int) -> None:
        bad = {"association_id": f"{self.run_id}-bad-{n}", "deployment": self.deployment}
        bad["features"] = "not a map"  # type: ignore[assignment]
        self.producer.produce(self.events_topic, json.dumps(bad).encode(), bad["association_id"])
        self.malformed += 1

    def _send_actual(self, aid: str, label: str) -> None:
        record = {
            "association_id": aid,
            "deployment": self.deployment,
            "label": label,
            "actual_time": int(time.time() * 1000),
        }
        self._send(self.actuals_topic, "Actual", record)
        self.actuals_sent += 1

    def _run(self) -> None:
        rows = self._rows()
        started = time.monotonic()
        while not self._stop.wait(0.05):
            now = time.monotonic()
            due = int((now - started) * self.rate)
            while self.sent < due:
                if self.sent in self._bad_left:
                    self._bad_left.discard(self.sent)
                    self._send_malformed(self.malformed)
                features, label = next(rows)
                now_ms = max(int(time.time() * 1000), self.times[-1] if self.times else 0)
                aid = self._send_event(self.sent, features, now_ms)
                self.times.append(now_ms)
                self._pending.append((now + self.label_delay_s, aid, label))
                self.sent += 1
            while self._pending and self._pending[0][0] <= now:
                self._send_actual(*self._pending.popleft()[1:])
            self.producer.poll(0)
