"""Detection quality of the drift service on seeded scenarios: windows to detection, false alarms.

Windows are count windows of ``window`` events, numbered from 0; a drift starts on a window
boundary. A window is *in alarm* when, after it closed, any threshold is at warning or critical
(hysteresis included) or the error-stream detector saw a change point in it.

- Data drift (mean shift, variance, new category) is detected in the first window, from the one
  the drift starts in, with a threshold on the changed feature in alarm.
- Concept drift is detected in the first window, from the one in which the first actual of a
  drifted event arrives, with a change point (or an accuracy threshold, if the policy has one).

The delay counts the start window as 0: a delay of 0 means "detected in the window the drift
started in" (for concept drift, in which its labels started to arrive).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from loadtest.drift_champion import DEPLOYMENT, Champion
from loadtest.drift_replay import InProcessDrift
from loadtest.drift_scenarios import (
    CATEGORICAL_FEATURE,
    SHIFTED_FEATURE,
    CreditColumns,
    Scenario,
    ScenarioStream,
)
from services.drift.monitor import MonitorConfig

CHANGED_FEATURE = {
    "mean_shift": SHIFTED_FEATURE,
    "variance_doubled": SHIFTED_FEATURE,
    "new_category": CATEGORICAL_FEATURE,
}


@dataclass(frozen=True)
class WindowOutcome:
    """One closed window: its alarms and what the service published for it."""

    seq: int
    alarms: frozenset[tuple[str, str | None]]  # thresholds at warning or critical
    firing: int  # breaches published with status "firing" (new or escalated alarms)
    change_point: bool
    accuracy: float | None

    @property
    def in_alarm(self) -> bool:
        """Any threshold in alarm, or a change point."""
        return bool(self.alarms) or self.change_point


def run_scenario(
    scenario: Scenario,
    champion: Champion,
    records: list[dict[str, Any]],
    window: int,
    batch: int,
    base: CreditColumns | None = None,
) -> list[WindowOutcome]:
    """Feed a scenario through the service's code path; one outcome per closed window."""
    drift = InProcessDrift(records, DEPLOYMENT, MonitorConfig(window_count=window))
    alarms: set[tuple[str, str | None]] = set()
    out = []
    for b in ScenarioStream(scenario, champion, base).batches(batch):
        for published in drift.feed(b):
            for t in published.window.transitions:
                if t.kind == "resolved":
                    alarms.discard((t.metric, t.feature))
                else:
                    alarms.add((t.metric, t.feature))
            report = published.report
            out.append(
                WindowOutcome(
                    seq=published.window.figures.seq,
                    alarms=frozenset(alarms),
                    firing=sum(b["status"] == "firing" for b in published.breaches),
                    change_point=bool(report["change_point"]),
                    accuracy=report["metrics"].get("accuracy"),
                )
            )
    return out


def start_window(scenario: Scenario, window: int) -> int | None:
    """The window detection is counted from (None for no drift)."""
    if scenario.name == "concept_drift":
        return None if scenario.labels_arrive is None else scenario.labels_arrive // window
    return None if scenario.drift_start is None else scenario.drift_start // window


def detected(scenario: Scenario, w: WindowOutcome) -> bool:
    """Whether this window's alarms are the scenario's change being detected."""
    if scenario.name == "concept_drift":
        return w.change_point or any(m in ("accuracy", "f1", "roc_auc") for m, _ in w.alarms)
    feature = CHANGED_FEATURE.get(scenario.name)
    return any(f == feature for _, f in w.alarms)


def detection_delay(scenario: Scenario, outcomes: list[WindowOutcome], window: int) -> int | None:
    """Windows from the start window (0) to detection; None when never detected."""
    start = start_window(scenario, window)
    if start is None:
        return None
    for w in outcomes:
        if w.seq >= start and detected(scenario, w):
            return w.seq - start
    return None


def clean_windows(
    scenario: Scenario, outcomes: list[WindowOutcome], window: int
) -> list[WindowOutcome]:
    """The windows before the first drifted event (all of them without drift)."""
    if scenario.drift_start is None:
        return outcomes
    return [w for w in outcomes if w.seq < scenario.drift_start // window]
