"""The evidence a release decision rests on, read from drift reports.

A shadow challenger is judged on paired outcomes: the labelled events both it and the champion
scored, counted by drift once per event (`paired` in each challenger entry of a DriftReport).
Classification: McNemar's exact test on the discordant events (champion right and challenger
wrong, `champion_only`; the reverse, `challenger_only`), with the accuracy difference
`(challenger_only - champion_only) / n`. Regression: a paired t-test on the differences of
absolute errors (challenger minus champion), the improvement taken relative to the champion's
mean absolute error. The verdict: promote when the challenger is better by the margin and the
test says it is not noise; retire when it is not better by the margin, or still undecided after
`max_windows`; wait otherwise.

After a champion swap, the guard compares the new champion's first windows with labels against
the previous champion's last ones (their accuracy, or mean absolute error, weighted by labels).

>>> report = {"model_id": "a", "window_start": 0, "labels_joined": 100, "metrics": {},
...           "challengers": [{"model_id": "b", "paired": {"n": 100, "champion_only": 2,
...           "challenger_only": 20, "diff_sum": 0.0, "diff_sq_sum": 0.0}}]}
>>> policy = {"min_windows": 3, "min_labels": 300, "margin": 0.05, "significance": 0.05,
...           "max_windows": 20}
>>> v = judge([report] * 3, "a", "b", "classification", policy, since_ms=0)
>>> v.decision, v.windows, v.labels, round(v.difference, 2), v.p_value < 0.001
('promote', 3, 300, 0.18, True)
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any

from scipy import stats

Report = Mapping[str, Any]


@dataclasses.dataclass(frozen=True)
class Verdict:
    """A challenger's judgement: promote | retire | wait, with the figures behind it."""

    decision: str
    windows: int
    labels: int
    difference: float | None  # how much better the challenger is (accuracy points, or MAE)
    p_value: float | None
    reason: str

    def evidence(self) -> dict[str, Any]:
        """The figures, for the governance event's payload."""
        return dataclasses.asdict(self)


def _paired(reports: Sequence[Report], champion_id: str, challenger_id: str, since_ms: int):
    """The challenger's paired outcomes of each report measured with this champion."""
    for r in reports:
        if r["model_id"] != champion_id or r["window_start"] < since_ms:
            continue
        for c in r.get("challengers") or ():
            paired = c.get("paired")
            if c["model_id"] == challenger_id and paired and paired["n"] > 0:
                yield r, paired


def _weighted(reports: Sequence[Report], metric: str) -> float | None:
    """The labels-weighted mean of a champion metric over reports."""
    pairs = [
        (r["metrics"][metric], r["labels_joined"])
        for r in reports
        if metric in r["metrics"] and r["labels_joined"] > 0
    ]
    total = sum(w for _m, w in pairs)
    return sum(m * w for m, w in pairs) / total if total else None


def _classification(outcomes: list[Mapping[str, Any]]) -> tuple[float, float, str]:
    n = sum(p["n"] for p in outcomes)
    b = sum(p["champion_only"] for p in outcomes)
    c = sum(p["challenger_only"] for p in outcomes)
    p_value = stats.binomtest(c, b + c, 0.5).pvalue if b + c else 1.0
    what = (
        f"on {n} labelled events both scored, the challenger alone was right on {c} and the "
        f"champion alone on {b}: accuracy {(c - b) / n:+.3f}, McNemar p = {p_value:.2g}"
    )
    return (c - b) / n, float(p_value), what


def _regression(
    outcomes: list[Mapping[str, Any]], champion_mae: float | None
) -> tuple[float, float, str]:
    n = sum(p["n"] for p in outcomes)
    mean = sum(p["diff_sum"] for p in outcomes) / n
    square = sum(p["diff_sq_sum"] for p in outcomes) / n
    variance = max(0.0, square - mean * mean) * n / (n - 1) if n > 1 else 0.0
    if variance > 0:
        p_value = float(2 * stats.t.sf(abs(mean) / math.sqrt(variance / n), n - 1))
    else:
        p_value = 0.0 if mean != 0 and n > 1 else 1.0
    scale = champion_mae if champion_mae else 1.0
    what = (
        f"on {n} labelled events both scored, the challenger's absolute error was "
        f"{mean:+.4g} against the champion's (champion MAE {scale:.4g}): paired t-test "
        f"p = {p_value:.2g}"
    )
    return -mean / scale, p_value, what


def judge(
    reports: Sequence[Report],
    champion_id: str,
    challenger_id: str,
    task: str,
    policy: Mapping[str, Any],
    since_ms: int,
) -> Verdict:
    """Judge a shadow challenger on the reports since it joined (`since_ms`)."""
    found = list(_paired(reports, champion_id, challenger_id, since_ms))
    windows = len(found)
    outcomes = [p for _r, p in found]
    labels = sum(p["n"] for p in outcomes)
    need = f"{policy['min_windows']} windows and {policy['min_labels']} labelled events"
    if windows < policy["min_windows"] or labels < policy["min_labels"]:
        if windows >= policy["max_windows"]:
            reason = f"not enough evidence after {windows} windows ({labels} events; {need})"
            return Verdict("retire", windows, labels, None, None, reason)
        return Verdict("wait", windows, labels, None, None, f"{windows} windows, {labels} events")
    if task == "regression":
        champion_mae = _weighted([r for r, _p in found], "mae")
        difference, p_value, what = _regression(outcomes, champion_mae)
    else:
        difference, p_value, what = _classification(outcomes)
    margin, alpha = policy["margin"], policy["significance"]
    over = f" over {windows} windows"
    if difference >= margin and p_value < alpha:
        return Verdict("promote", windows, labels, difference, p_value, what + over)
    if difference < margin:
        reason = f"{what}{over}: not better by the margin {margin}"
        return Verdict("retire", windows, labels, difference, p_value, reason)
    if windows >= policy["max_windows"]:
        reason = f"{what}{over}: not significant at {alpha} after {windows} windows"
        return Verdict("retire", windows, labels, difference, p_value, reason)
    return Verdict("wait", windows, labels, difference, p_value, what + over)


@dataclasses.dataclass(frozen=True)
class Guard:
    """After a swap: the new champion's figure against the previous one's, or not yet."""

    decision: str  # rollback | keep | wait
    before: float | None
    after: float | None
    reason: str

    def evidence(self) -> dict[str, Any]:
        """The figures, for the governance event's payload."""
        return dataclasses.asdict(self)


def guard(
    reports: Sequence[Report],
    previous_id: str,
    current_id: str,
    task: str,
    swapped_ms: int,
    windows: int,
    margin: float,
) -> Guard:
    """Compare the first `windows` labelled windows after the swap with the last before it."""
    labelled = [r for r in reports if r["labels_joined"] > 0]
    before = [r for r in labelled if r["model_id"] == previous_id and r["window_end"] <= swapped_ms]
    after = [r for r in labelled if r["model_id"] == current_id and r["window_start"] >= swapped_ms]
    metric = "mae" if task == "regression" else "accuracy"
    old = _weighted(before[-windows:], metric)
    if len(after) < windows or old is None:
        return Guard("wait", old, None, f"{len(after)} of {windows} windows after the swap")
    new = _weighted(after[:windows], metric)
    if new is None:
        return Guard("wait", old, None, f"no {metric} after the swap")
    if task == "regression":
        worse = new > old * (1 + margin)
    else:
        worse = new < old - margin
    verdict = "rollback" if worse else "keep"
    reason = (
        f"{metric} {new:.4g} over the {windows} windows after the swap against {old:.4g} over "
        f"the previous champion's last {len(before[-windows:])}"
        + (f": worse by more than the margin {margin}" if worse else "")
    )
    return Guard(verdict, old, new, reason)
