"""A one-line progress indicator on stderr for commands people run by hand."""

from __future__ import annotations

import sys
import time


class Progress:
    """Prints `label: n/total (pct) rate/s` at most a few times per second."""

    def __init__(self, label: str, total: int | None = None, stream=sys.stderr) -> None:
        self.label = label
        self.total = total
        self.stream = stream
        self.started = time.monotonic()
        self._last = 0.0
        self.n = 0

    def update(self, n: int) -> None:
        """Record progress; redraw if enough time has passed."""
        self.n = n
        now = time.monotonic()
        if now - self._last >= 0.25:
            self._last = now
            self._draw(now)

    def _draw(self, now: float) -> None:
        rate = self.n / max(now - self.started, 1e-9)
        total = f"/{self.total} ({100 * self.n / self.total:.0f}%)" if self.total else ""
        self.stream.write(f"\r{self.label}: {self.n}{total} {rate:,.0f}/s   ")
        self.stream.flush()

    def done(self) -> None:
        """Final redraw and newline."""
        self._draw(time.monotonic())
        self.stream.write("\n")
        self.stream.flush()
