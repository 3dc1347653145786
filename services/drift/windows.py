"""Tumbling windows of one deployment, by event time with allowed lateness, or by event count.

Time windows are ``[start, start + size)`` with ``start`` a multiple of the size. The
watermark is the largest event time seen minus the allowed lateness; a window closes once the
watermark reaches its end. An event whose window is already closed is *late*: counted (in the
newest open window, so the report shows it) but not added. Within one batch the watermark of
the batch start decides lateness, so a batch is assigned with one vectorised pass.

Count windows hold ``count`` events each (for replays and tests): they close when full.

Both need more events to close, so when a deployment's stream stops, its last windows would
stay open for good. ``idle`` closes them once the caller has seen nothing of the deployment
for an idle time: every count window (with the events it has), and every time window whose
end, allowed lateness and idle time the wall clock has passed (so a live stream that only
paused keeps its current window). The clock then moves to the end of the last time window
closed, so an event for it that still comes is late, as if the watermark had passed it.

Only events move the watermark: predictions follow their event's time and actuals come late by
nature. Predictions whose window has closed are dropped (counted by the caller); joined actuals
go to the newest open window ("labels that arrived during this window").

>>> w = Windows(size_ms=10, lateness_ms=2, factory=lambda seq, start, end: [])
>>> [(win.start, idx) for win, idx in w.assign_events([1, 3, 12])]
[(0, [0, 1]), (10, [2])]
>>> [win.start for win in w.due()], w.watermark
([0], 10)
>>> w.assign_events([5]), w.late
([], 1)
>>> w.idle(now_ms=26, idle_ms=5)  # [10, 20) + lateness 2 + idle 5 is 27: not yet
[]
>>> [win.start for win in w.idle(now_ms=27, idle_ms=5)], w.watermark
([10], 20)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Generic, TypeVar

import numpy as np

A = TypeVar("A")
Factory = Callable[[int, int, int], A]  # (seq, start, end) -> a fresh aggregate


class Window(Generic[A]):
    """One open window: its sequence number, bounds and aggregate."""

    __slots__ = ("aggregate", "end", "seq", "start")

    def __init__(self, seq: int, start: int, end: int, aggregate: A) -> None:
        self.seq, self.start, self.end, self.aggregate = seq, start, end, aggregate


class Windows(Generic[A]):
    """The open windows of one deployment and the rules that fill and close them."""

    def __init__(self, size_ms: int, lateness_ms: int, factory: Factory[A], count: int = 0) -> None:
        self.size_ms = max(1, int(size_ms))
        self.lateness_ms = max(0, int(lateness_ms))
        self.count = int(count)
        self.factory = factory
        self.open: dict[int, Window[A]] = {}  # by start (time) or seq (count)
        self.max_time: int | None = None
        self.next_seq = 0
        self.late = 0  # late events not yet reported (no window was open to carry them)
        self._counts: dict[int, int] = {}  # events per open count window

    @property
    def watermark(self) -> int | None:
        """Largest event time seen minus the allowed lateness (None before any event)."""
        return None if self.max_time is None else self.max_time - self.lateness_ms

    def _window(self, start: int) -> Window[A]:
        if start not in self.open:
            end = start + self.size_ms if not self.count else start
            seq = self.next_seq
            self.next_seq += 1
            self.open[start] = Window(seq, start, end, self.factory(seq, start, end))
            self.open = dict(sorted(self.open.items()))
        return self.open[start]

    def newest(self) -> Window[A]:
        """The newest open window (opened at the watermark when none is open)."""
        if self.open:  # kept sorted by start: the newest is the last
            return self.open[next(reversed(self.open))]
        if self.count:
            return self._window(self.next_seq)
        mark = self.watermark or 0
        return self._window(mark - mark % self.size_ms)

    def assign_events(self, times: Sequence[int]) -> list[tuple[Window[A], list[int]]]:
        """Split a batch of events (by index) over their windows; late ones are only counted."""
        if not len(times):
            return []
        if self.count:
            return self._assign_counted(len(times))
        t = np.asarray(times, dtype=np.int64)
        starts = t - t % self.size_ms
        mark = self.watermark
        late = (starts + self.size_ms <= mark) if mark is not None else np.zeros(t.size, bool)
        self.late += int(late.sum())
        self.max_time = int(t.max()) if mark is None else max(self.max_time or 0, int(t.max()))
        out = []
        for start in np.unique(starts[~late]).tolist():
            out.append(
                (self._window(int(start)), np.flatnonzero(~late & (starts == start)).tolist())
            )
        return out

    def _assign_counted(self, n: int) -> list[tuple[Window[A], list[int]]]:
        out = []
        i = 0
        while i < n:
            win = self.newest()
            if self._counts.get(win.seq, 0) >= self.count:
                win = self._window(self.next_seq)
            take = min(n - i, self.count - self._counts.get(win.seq, 0))
            out.append((win, list(range(i, i + take))))
            self._counts[win.seq] = self._counts.get(win.seq, 0) + take
            i += take
        return out

    def window_at(self, time_ms: int) -> Window[A] | None:
        """The open window for a prediction at ``time_ms``; None when it has closed."""
        if self.count:
            return self.newest()
        start = time_ms - time_ms % self.size_ms
        mark = self.watermark
        if mark is not None and start + self.size_ms <= mark:
            return None
        return self._window(start)

    def due(self) -> list[Window[A]]:
        """Remove and return the windows that are closed, oldest first."""
        if self.count:
            keys = [k for k, w in self.open.items() if self._counts.get(w.seq, 0) >= self.count]
        else:
            mark = self.watermark
            keys = [] if mark is None else [k for k, w in self.open.items() if w.end <= mark]
        closed = [self.open.pop(k) for k in keys]
        for w in closed:
            self._counts.pop(w.seq, None)
        return closed

    def idle(self, now_ms: int, idle_ms: int) -> list[Window[A]]:
        """Remove and return the windows a stream that went quiet leaves open, oldest first:
        every count window; the time windows whose end + lateness + ``idle_ms`` is at or
        before the wall clock ``now_ms``, after which the watermark is at their end."""
        if self.count:
            return self.close_all()
        keys = [k for k, w in self.open.items() if w.end + self.lateness_ms + idle_ms <= now_ms]
        closed = [self.open.pop(k) for k in keys]
        if closed:
            moved = max(w.end for w in closed) + self.lateness_ms
            self.max_time = moved if self.max_time is None else max(self.max_time, moved)
        return closed

    def close_all(self) -> list[Window[A]]:
        """Remove and return every open window (the reference changed)."""
        closed = list(self.open.values())
        self.open.clear()
        self._counts.clear()
        return closed

    def take_late(self) -> int:
        """Late events not yet reported, reset to zero."""
        late, self.late = self.late, 0
        return late

    def state(self, aggregate_state: Callable[[A], Any]) -> dict[str, Any]:
        """Open windows and the clock as JSON-able data."""
        return {
            "max_time": self.max_time,
            "next_seq": self.next_seq,
            "late": self.late,
            "open": [
                [k, w.seq, w.start, w.end, self._counts.get(w.seq, 0), aggregate_state(w.aggregate)]
                for k, w in self.open.items()
            ],
        }

    def restore(self, state: Mapping[str, Any], aggregate: Callable[[Any], A]) -> None:
        """Load a ``state()`` (aggregates rebuilt by ``aggregate``)."""
        self.max_time = state["max_time"]
        self.next_seq = int(state["next_seq"])
        self.late = int(state["late"])
        self.open, self._counts = {}, {}
        for key, seq, start, end, n, agg in state["open"]:
            self.open[int(key)] = Window(int(seq), int(start), int(end), aggregate(agg))
            if self.count:
                self._counts[int(seq)] = int(n)
        self.open = dict(sorted(self.open.items()))
