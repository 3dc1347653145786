"""The record times the drift service accepts: up to now plus a skew, and not before year 1.

A time far in the future would move a deployment's watermark past every later event (all of
them late: drift blind) and open a window that never closes; a time near the limits of a long
would overflow the window arithmetic. Records with such times are refused with the field named
and go to the dead-letter topic. Old times (year 1 onwards, negative epoch times included) are
accepted: their windows have closed, so the windows count them as late.

>>> bounds = TimeBounds(300, clock=lambda: 1_000.0)
>>> latest = bounds.latest()
>>> bounds.refused(np.array([-5, 1_300_000, 1_300_001]), latest).tolist()
[False, False, True]
>>> bounds.check("event_time", 1_300_001, latest).reason.value
'future_event_time'
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from services.common.errors import PoisonMessage, Reason
from services.common.json_input import EARLIEST_MS


class TimeBounds:
    """Refuses record times beyond the wall clock plus ``max_future_skew_s``, or before year 1."""

    def __init__(self, max_future_skew_s: float, clock: Callable[[], float] = time.time) -> None:
        self.skew_ms = int(max_future_skew_s * 1000)
        self.clock = clock

    def latest(self) -> int:
        """The latest time accepted now (epoch milliseconds)."""
        return int(self.clock() * 1000) + self.skew_ms

    def refused(self, times: np.ndarray, latest: int) -> np.ndarray:
        """Which of ``times`` (int64) are out of bounds."""
        return (times > latest) | (times < EARLIEST_MS)

    def check(self, field: str, value: int, latest: int) -> PoisonMessage | None:
        """Why a record whose ``field`` is ``value`` is refused, or None."""
        if EARLIEST_MS <= value <= latest:
            return None
        return self.refusal(field, value, latest)

    def refusal(self, field: str, value: int, latest: int) -> PoisonMessage:
        """Why a record whose ``field`` is out of bounds is refused."""
        if value < EARLIEST_MS:
            return PoisonMessage(Reason.OUT_OF_RANGE, f"{field} {value} is before year 1")
        ahead = (value - (latest - self.skew_ms)) // 1000
        return PoisonMessage(
            Reason.FUTURE_EVENT_TIME,
            f"{field} {value} is {ahead} s ahead of the clock (allowed {self.skew_ms // 1000} s)",
        )
