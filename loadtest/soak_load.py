"""The soak's steady load: credit events at a fixed rate with their actuals a few seconds later.

Event i has association id `<run_id>-<i>`; its broker acknowledgement is recorded, so the checker
owes a prediction only for events the broker acknowledged (a delivery that failed is unknown).
"""

from __future__ import annotations

import bisect
import collections
import threading
import time
from typing import Any

from confluent_kafka import Producer

from services.common import serde
from services.common.producing import produce_waiting
from services.trainer.credit import credit_rows

EVENT_HEADER = [serde.fingerprint_header("FeatureEvent")]
ACTUAL_HEADER = [serde.fingerprint_header("Actual")]
STREAM_SEED = 7


class SteadyLoad:
    """Produces events and actuals at `rate` per second on a background thread until stopped."""

    def __init__(
        self,
        producer_conf: dict[str, Any],
        namer: Any,
        run_id: str,
        deployment: str,
        rate: float,
        label_delay_s: float,
    ) -> None:
        # Errors only: the warnings of a paused broker would drown the progress lines.
        self.producer = Producer({**producer_conf, "log_level": 3})
        self.events, self.actuals = namer.events, namer.actuals
        self.run_id, self.deployment = run_id, deployment
        self.rate, self.label_delay_s = rate, label_delay_s
        self.sent = 0
        self.acked = bytearray()
        self.failed = 0
        self.errors: list[str] = []
        self.times: list[float] = []  # monotonic send time of event i
        self._pending: collections.deque[tuple[float, str, str]] = collections.deque()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="soak-load", daemon=True)

    def start(self) -> SteadyLoad:
        """Start producing."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop producing and wait (up to 60 s) for the last acknowledgements."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(30)
        if self.producer is not None:
            self.producer.flush(60)
            self.producer = None  # destroyed now, not retrying a stopped broker until exit

    def index_at(self, t: float) -> int:
        """Index of the first event sent at or after monotonic time `t`."""
        return bisect.bisect_left(self.times, t)

    def _acked(self, index: int) -> Any:
        def report(err: Any, _msg: Any) -> None:
            if err is None:
                self.acked[index] = 1
            else:
                self.failed += 1
                if len(self.errors) < 10:
                    self.errors.append(str(err))

        return report

    def _actual_report(self, err: Any, _msg: Any) -> None:
        if err is not None and len(self.errors) < 10:
            self.errors.append(f"actual: {err}")

    def _send_event(self, features: dict[str, Any]) -> str:
        i = self.sent
        aid = f"{self.run_id}-{i}"
        event = {
            "association_id": aid,
            "deployment": self.deployment,
            "event_time": int(time.time() * 1000),
            "features": features,
            "attributes": {"soak": self.run_id},
        }
        self.acked.append(0)
        self.times.append(time.monotonic())
        produce_waiting(self.producer, self.events, serde.encode("FeatureEvent", event), aid,
                        headers=EVENT_HEADER, on_delivery=self._acked(i))  # fmt: skip
        self.sent += 1
        return aid

    def _send_actual(self, aid: str, label: str) -> None:
        actual = {"association_id": aid, "deployment": self.deployment, "label": label,
                  "actual_time": int(time.time() * 1000)}  # fmt: skip
        produce_waiting(self.producer, self.actuals, serde.encode("Actual", actual), aid,
                        headers=ACTUAL_HEADER, on_delivery=self._actual_report)  # fmt: skip

    def _run(self) -> None:
        rows = credit_rows(10**9, seed=STREAM_SEED)
        started = time.monotonic()
        while not self._stop.wait(0.02):
            now = time.monotonic()
            due = int((now - started) * self.rate)
            while self.sent < due and not self._stop.is_set():
                features, label = next(rows)
                aid = self._send_event(features)
                self._pending.append((now + self.label_delay_s, aid, label))
            while self._pending and self._pending[0][0] <= now:
                self._send_actual(*self._pending.popleft()[1:])
            self.producer.poll(0)
