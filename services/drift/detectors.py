"""Online change detection on a model's error stream (river ADWIN, Page-Hinkley, DDM).

``ErrorStreamDetector(kind)`` feeds a batch of per-prediction errors (0/1 misclassifications,
or absolute errors for regression; DDM accepts 0/1 only) and says whether a change was seen.

Persistence without pickle: ``state()`` keeps the detector's kind and parameters plus the tail
of errors seen since the last detected change, capped at ``tail`` values (river resets a
detector after a detection, so older errors no longer matter). ``from_state`` re-creates the
detector and replays the tail with detections suppressed. What is lost when more than ``tail``
errors came since the last change: ADWIN's window beyond the tail, Page-Hinkley's cumulative
sums and DDM's minimum error rate from before the tail, so right after a restart the detector
is as if it had started ``tail`` errors ago (slower to flag a change that began earlier).

>>> det = ErrorStreamDetector("ddm")
>>> det.update_many([0] * 500)
False
>>> det.update_many([1] * 200)
True
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any, Literal, Self

import numpy as np
from river.drift import ADWIN, PageHinkley
from river.drift.binary import DDM

from services.common.errors import ConfigError

Kind = Literal["adwin", "page_hinkley", "ddm"]
FACTORIES: dict[str, Any] = {"adwin": ADWIN, "page_hinkley": PageHinkley, "ddm": DDM}
DEFAULT_TAIL = 2000
# river's DDM defaults (warm_start 30, drift 3 sd) fired on 13 of 20 stable 0/1 streams of
# 3,000 errors at rate 0.1; these fired on 0 of 40 streams of 5,000 and still caught a jump
# from 0.1 to 0.4 within 180 errors (median 95).
DEFAULT_PARAMS: dict[str, dict[str, Any]] = {"ddm": {"warm_start": 300, "drift_threshold": 4.0}}


class ErrorStreamDetector:
    """A river change detector over an error stream, persistable as JSON-able data."""

    def __init__(
        self, kind: Kind, params: Mapping[str, Any] | None = None, tail: int = DEFAULT_TAIL
    ) -> None:
        if kind not in FACTORIES:
            raise ConfigError(f"unknown detector {kind!r}; expected one of {sorted(FACTORIES)}")
        if tail < 1:
            raise ConfigError("detector tail must be >= 1")
        self.kind = kind
        self.params = DEFAULT_PARAMS.get(kind, {}) | dict(params or {})
        try:
            self._detector = FACTORIES[kind](**self.params)
        except TypeError as exc:
            raise ConfigError(f"detector {kind!r}: bad parameters {self.params}: {exc}") from exc
        self._tail: deque[float] = deque(maxlen=int(tail))
        self.changes = 0

    def update_many(self, errors: Sequence[float] | np.ndarray) -> bool:
        """Feed a batch of errors in arrival order; True when a change was detected in it."""
        values = np.asarray(errors, dtype=float).ravel()
        values = values[~np.isnan(values)]
        if self.kind == "ddm" and not np.all((values == 0) | (values == 1)):
            raise ConfigError("ddm needs 0/1 errors; use adwin or page_hinkley for real values")
        detected = False
        for v in values.tolist():
            # river's update() returns None; the flag is an attribute of the detector.
            self._detector.update(bool(v) if self.kind == "ddm" else v)
            self._tail.append(v)
            if self._detector.drift_detected:
                detected = True
                self.changes += 1
                self._tail.clear()
        return detected

    def state(self) -> dict[str, Any]:
        """Kind, parameters and the error tail since the last change (JSON-able)."""
        return {
            "kind": self.kind,
            "params": self.params,
            "tail_size": self._tail.maxlen,
            "tail": list(self._tail),
            "changes": self.changes,
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> Self:
        """Re-create the detector and replay its stored tail without reporting detections."""
        det = cls(state["kind"], state.get("params"), int(state.get("tail_size", DEFAULT_TAIL)))
        for v in state.get("tail", []):
            det._detector.update(bool(v) if det.kind == "ddm" else float(v))
            det._tail.append(float(v))
            if det._detector.drift_detected:
                det._tail.clear()
        det.changes = int(state.get("changes", 0))
        return det
