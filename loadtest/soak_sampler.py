"""Samples the soak every few seconds: RSS and open files per service, lag, Redis memory,
/metrics lines; prints a progress line once a minute.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from loadtest.soak_probe import metric_lines, process_stats, redis_used_memory


class Sampler:
    """Takes a sample every `every_s` seconds on a background thread."""

    def __init__(self, stack: Any, redis_client: Any, every_s: float,
                 say: Callable[[str], None]) -> None:  # fmt: skip
        self.stack = stack
        self.redis = redis_client
        self.every_s = every_s
        self.say = say
        self.samples: list[dict[str, Any]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="soak-sampler", daemon=True)

    def start(self) -> Sampler:
        """Start sampling."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop sampling."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(30)

    def metric_lines(self) -> dict[str, int]:
        """/metrics sample lines of each service that answers now."""
        out = {}
        for name, port in self.stack.plan.metrics_ports:
            lines = metric_lines(port)
            if lines is not None:
                out[name] = lines
        return out

    def sample(self) -> dict[str, Any]:
        """One sample now."""
        s = self.stack
        pids = s.services.pids()
        stats = {n: process_stats(pid) for n, pid in pids.items()}
        lag: dict[str, int | None] = {}
        for name, reader in (("scorer", s.scorer_lag), ("drift", s.drift_lag)):
            try:
                lag[name] = reader.lag(timeout_s=3)
            except Exception:  # noqa: BLE001 - broker paused: a gap in the series
                lag[name] = None
        used = redis_used_memory(self.redis)
        return {
            "t": round(time.monotonic() - s.started, 1),
            "pid": pids,
            "rss_mb": {n: round(v[0], 1) for n, v in stats.items() if v},
            "fds": {n: v[1] for n, v in stats.items() if v},
            "lag": lag,
            "redis_mb": None if used is None else round(used / 2**20, 2),
            "metric_lines": self.metric_lines(),
            "sent": s.load.sent,
            "answered_max_index": s.watch.max_index,
        }

    def _run(self) -> None:
        next_line = 60.0
        while not self._stop.wait(self.every_s):
            try:
                sample = self.sample()
            except Exception as exc:  # noqa: BLE001 - one bad sample must not end the soak
                self.say(f"sampler: {exc}")
                continue
            self.samples.append(sample)
            if sample["t"] >= next_line:
                next_line += 60.0
                rss = ", ".join(f"{n} {v:.0f}" for n, v in sorted(sample["rss_mb"].items()))
                self.say(
                    f"minute {int(sample['t'] // 60)}: {sample['sent']:,} events sent, lag "
                    f"scorer {sample['lag']['scorer']} drift {sample['lag']['drift']}, "
                    f"redis {sample['redis_mb']} MiB, RSS MiB {rss}"
                )
