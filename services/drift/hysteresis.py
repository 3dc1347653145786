"""Threshold evaluation with hysteresis: window values in, firing / escalated / resolved out.

Each threshold watches one metric (of one feature, or deployment-wide when ``feature`` is None)
and has a ``warning`` and/or ``critical`` level, a ``direction`` (``above``: high values are bad,
like PSI; ``below``: low values are bad, like a p-value or accuracy) and a ``hysteresis`` band in
the metric's units. Entering a level needs the value to reach it; leaving it needs the value to
cross back past ``level - hysteresis`` (``+`` for ``below``), so a value hovering at a
threshold fires once and does not flap. A None value (too few observations) changes nothing.
`continuing` reports the thresholds that stay firing through a window, so a consumer can tell a
condition sustained for K windows (as Prometheus keeps sending a firing alert).

>>> ev = ThresholdEvaluator([Threshold("psi", "age", warning=0.1, critical=0.25, hysteresis=0.02)])
>>> [t.kind for v in (0.05, 0.11, 0.09, 0.3, 0.07) for t in ev.evaluate({("psi", "age"): v})]
['firing', 'escalated', 'resolved']
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, Self

from services.common.errors import ConfigError

Direction = Literal["above", "below"]
Key = tuple[str, str | None]
LEVELS = ("ok", "warning", "critical")


@dataclass(frozen=True)
class Threshold:
    """Warning and critical levels of one metric (of one feature, or deployment-wide)."""

    metric: str
    feature: str | None = None
    warning: float | None = None
    critical: float | None = None
    hysteresis: float = 0.0
    direction: Direction = "above"

    def __post_init__(self) -> None:
        sign = self.sign
        if self.direction not in ("above", "below"):
            raise ConfigError(f"threshold {self.key}: direction must be 'above' or 'below'")
        if self.warning is None and self.critical is None:
            raise ConfigError(f"threshold {self.key}: needs a warning or a critical level")
        if self.hysteresis < 0 or not math.isfinite(self.hysteresis):
            raise ConfigError(f"threshold {self.key}: hysteresis must be a finite value >= 0")
        if (
            self.warning is not None
            and self.critical is not None
            and sign * self.critical < sign * self.warning
        ):
            raise ConfigError(f"threshold {self.key}: critical is less severe than warning")

    @property
    def key(self) -> Key:
        """The (metric, feature) pair the threshold watches."""
        return (self.metric, self.feature)

    @property
    def sign(self) -> int:
        """+1 when high values are bad, -1 when low values are."""
        return 1 if self.direction == "above" else -1

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Self:
        """Build from a policy entry (metric, feature, warning, critical, hysteresis, direction)."""
        unknown = set(d) - {"metric", "feature", "warning", "critical", "hysteresis", "direction"}
        if unknown:
            raise ConfigError(f"threshold: unknown keys {sorted(unknown)}")
        return cls(
            metric=str(d["metric"]),
            feature=d.get("feature"),
            warning=None if d.get("warning") is None else float(d["warning"]),
            critical=None if d.get("critical") is None else float(d["critical"]),
            hysteresis=float(d.get("hysteresis") or 0.0),
            direction=d.get("direction") or "above",
        )


@dataclass(frozen=True)
class Transition:
    """A change of alert state (``firing``, ``escalated``, ``deescalated``, ``resolved``), or
    ``continuing``: still firing at the same level in a later window."""

    metric: str
    feature: str | None
    kind: Literal["firing", "escalated", "deescalated", "resolved", "continuing"]
    severity: Literal["warning", "critical"] | None  # None once resolved
    value: float
    threshold: float  # the level entered, or the one left when resolving


def _level(t: Threshold, value: float, current: int) -> int:
    """The level after seeing ``value`` when at ``current`` (0 ok, 1 warning, 2 critical)."""
    v = t.sign * value
    warn = math.inf if t.warning is None else t.sign * t.warning
    crit = math.inf if t.critical is None else t.sign * t.critical
    raw = 2 if v >= crit else 1 if v >= warn else 0
    if raw >= current:
        return raw
    # Going down: stay while the value has not crossed back past level - hysteresis.
    if current == 2 and v > crit - t.hysteresis:
        return 2
    if v > min(warn, crit) - t.hysteresis:
        return max(raw, 1) if t.warning is not None else 2
    return raw


class ThresholdEvaluator:
    """Per-threshold alert state machine over a series of window values."""

    def __init__(self, thresholds: Iterable[Threshold]) -> None:
        self.thresholds: dict[Key, Threshold] = {}
        for t in thresholds:
            if t.key in self.thresholds:
                raise ConfigError(f"threshold {t.key} defined twice")
            self.thresholds[t.key] = t
        self.levels: dict[Key, int] = dict.fromkeys(self.thresholds, 0)

    def evaluate(self, values: Mapping[Key, float | None]) -> list[Transition]:
        """Feed one window's values by (metric, feature); return the transitions it causes."""
        out = []
        for key, value in values.items():
            t = self.thresholds.get(key)
            if t is None or value is None or math.isnan(value):
                continue
            before = self.levels[key]
            after = _level(t, value, before)
            if after == before:
                continue
            self.levels[key] = after
            out.append(_transition(t, value, before, after))
        return out

    def continuing(
        self, values: Mapping[Key, float | None], changed: Iterable[Transition]
    ) -> list[Transition]:
        """Thresholds firing before and after this window's values, at an unchanged level."""
        moved = {(t.metric, t.feature) for t in changed}
        out = []
        for key, value in values.items():
            t = self.thresholds.get(key)
            level = self.levels.get(key, 0)
            if t is None or not level or key in moved or value is None or math.isnan(value):
                continue
            entered = t.warning if level == 1 else t.critical
            assert entered is not None  # a level is only entered when it is defined
            severity: Literal["warning", "critical"] = "warning" if level == 1 else "critical"
            out.append(
                Transition(t.metric, t.feature, "continuing", severity, float(value), entered)
            )
        return out

    def firing(self) -> dict[Key, str]:
        """The thresholds currently firing, with their severity."""
        return {k: LEVELS[lvl] for k, lvl in self.levels.items() if lvl}

    def state(self) -> dict[str, Any]:
        """The levels of firing thresholds (JSON-able)."""
        return {"firing": [[m, f, LEVELS[lvl]] for (m, f), lvl in self.levels.items() if lvl]}

    @classmethod
    def from_state(cls, thresholds: Iterable[Threshold], state: Mapping[str, Any]) -> Self:
        """Rebuild from thresholds and a ``state()``; levels of removed thresholds are dropped."""
        ev = cls(thresholds)
        for metric, feature, level in state.get("firing", []):
            if (metric, feature) in ev.levels and level in LEVELS:
                ev.levels[(metric, feature)] = LEVELS.index(level)
        return ev


def _transition(t: Threshold, value: float, before: int, after: int) -> Transition:
    """Describe a level change as a transition."""
    severity: Literal["warning", "critical"] | None = None
    if after == 0:
        kind: Literal["firing", "escalated", "deescalated", "resolved"] = "resolved"
        level = t.warning if t.warning is not None else t.critical
    else:
        kind = "firing" if before == 0 else "escalated" if after > before else "deescalated"
        severity = "warning" if after == 1 else "critical"
        level = t.warning if after == 1 else t.critical
    assert level is not None  # a level is only entered when it is defined
    return Transition(t.metric, t.feature, kind, severity, float(value), float(level))
