"""The demo's closing report: one table of what happened, and the checks that decide the exit code.

>>> mean([0.5, 1.0]), mean([])
(0.75, None)
"""

from __future__ import annotations

import collections
from collections.abc import Sequence
from typing import Any

from services.cli.demo_loop import LoopWatch
from services.common import refused_sources


def mean(values: Sequence[float]) -> float | None:
    """The mean, or None for no values."""
    return sum(values) / len(values) if values else None


def _acc(values: Sequence[float]) -> str:
    m = mean(values)
    return "n/a" if m is None else f"{m:.3f} over {len(values)} window(s)"


def accuracy_phases(w: LoopWatch) -> dict[str, list[float]]:
    """Champion accuracy per window: before concept drift, after it (v1), after the swap (v2)."""
    out: dict[str, list[float]] = {"before": [], "after_drift": [], "after_swap": []}
    if w.v1 is None:
        return out
    at = w.stream.injected_at_ms(w.plan.concept_drift_at)
    labels_from = None if at is None else at + int(w.plan.label_delay_s * 1000)
    v1 = [r for r in w.reports(w.v1["model_id"]) if "accuracy" in r["metrics"]]
    for r in v1[1:]:  # the first window is mostly waiting for its first labels
        if labels_from is None or r["window_end"] <= labels_from:
            out["before"].append(r["metrics"]["accuracy"])
        elif r["window_start"] >= labels_from:
            out["after_drift"].append(r["metrics"]["accuracy"])
    if w.v2 is not None:
        v2 = w.reports(w.v2["model_id"])
        out["after_swap"] = [r["metrics"]["accuracy"] for r in v2 if "accuracy" in r["metrics"]]
    return out


def release_figures(w: LoopWatch, acc: dict[str, list[float]]) -> str:
    """Issue 26's three figures for the concept drift: windows to detection (target <= 2),
    seconds from detection to the new champion serving (<= 60), accuracy over the two windows
    after the swap relative to before the drift (>= 95%)."""
    parts = []
    d = w.detection("accuracy", w.plan.concept_drift_at)
    parts.append(f"detected after {d.windows} window(s) (target <= 2)" if d else "not detected")
    detected, swapped = w.reached.get("concept_drift_detected"), w.reached.get("swapped")
    if detected and swapped:
        parts.append(f"detection to v2 serving {swapped[0] - detected[0]:.1f} s (target <= 60)")
    before, after = mean(acc["before"]), mean(acc["after_swap"][:2])
    if before and after is not None:
        parts.append(f"accuracy after the swap {after / before:.0%} of before (target >= 95%)")
    return "; ".join(parts)


def _slices(lineage: dict[str, Any]) -> list[str]:
    by_topic: dict[str, list[str]] = collections.defaultdict(list)
    for s in lineage["dataset"]["stream_slices"]:
        by_topic[s["topic"]].append(f"p{s['partition']} {s['start_offset']}-{s['end_offset']}")
    return [f"{topic}: {', '.join(parts)}" for topic, parts in sorted(by_topic.items())]


def render(
    w: LoopWatch,
    phases: collections.Counter[str],
    served: tuple[int, int],
    wall_s: float,
) -> list[str]:
    """The report lines."""
    rows: list[tuple[str, str]] = []
    s, plan = w.stream, w.plan
    rows.append(
        (
            "events",
            f"{s.sent:,} valid + {s.malformed} malformed, {plan.rate:g}/s; "
            f"{s.actuals_sent:,} actuals {plan.label_delay_s:g} s later",
        )
    )
    counts = w.timeline.prediction_counts()
    for (version, role, served_flag), n in sorted(counts.items()):
        rows.append(
            (
                f"predictions v{version}",
                f"{n:,} {role}" + (" (served)" if served_flag else " (shadow)"),
            )
        )
    distinct, served_rows = served
    rows.append(
        (
            "served answers",
            f"{distinct:,} events answered ({served_rows - distinct} duplicate rows)",
        )
    )
    # One bad event is refused by the scorer and by drift: count it once, naming both.
    letters = [x.record for x in w.timeline.get("deadletter")]
    rows.append(("dead letters", refused_sources.summary(refused_sources.group(letters))))
    for label, kind, index in (
        ("data drift", "data_drift", plan.data_drift_at),
        ("concept drift", "accuracy", plan.concept_drift_at),
    ):
        d = w.detection(kind, index)
        where = f"injected at event {index:,}"
        if d is None:
            rows.append((label, f"{where}; NOT detected"))
        else:
            b = d.breach
            metric = b["metric"] + (f"[{b['feature']}]" if b["feature"] else "")
            rows.append(
                (
                    label,
                    f"{where}; detected by {metric} {b['value']:.3f} after "
                    f"{d.windows} window(s) / {d.events:,} events / {d.seconds:.1f} s",
                )
            )
        false = w.false_alarms(kind, index)
        if false:
            rows.append(("", f"{len(false)} {kind} breach(es) before the injection"))
    hooks = w.webhooks()
    alerts = collections.Counter(
        a.get("status") for h in hooks for a in h["payload"].get("alerts", [])
    )
    rows.append(
        (
            "alerts delivered",
            f"{len(hooks)} signed webhook(s) verified by the sink: "
            + ", ".join(f"{n} {k}" for k, n in sorted(alerts.items())),
        )
    )
    rows.append(("retrain requests", str(len(w.timeline.get("retrain")))))
    acc = accuracy_phases(w)
    rows.append(("accuracy before drift", _acc(acc["before"])))
    rows.append(("accuracy after drift", _acc(acc["after_drift"]) + " (v1)"))
    rows.append(("accuracy after swap", _acc(acc["after_swap"]) + " (v2)"))
    for event, evidence in w.decisions():
        if evidence.get("decision") == "promote":
            rows.append(("promotion evidence", event["reason"]))
    rows.append(("release figures", release_figures(w, acc)))
    if w.v2 is not None:
        lin = w.v2["lineage"]
        parent = "v1" if w.v1 and w.v2["parent_id"] == w.v1["model_id"] else "?"
        rows.append(
            (
                "v2 lineage",
                f"parent {str(w.v2['parent_id'])[:16]} ({parent}); "
                f"{lin['dataset']['rows']:,} rows from the stream",
            )
        )
        rows += [("  slice", line) for line in _slices(lin)]
        rows.append(("  slice events", ", ".join(f"{n} {p}" for p, n in sorted(phases.items()))))
        rows.append(
            (
                "  holdout",
                ", ".join(
                    f"{k} {v:.3f}"
                    for k, v in sorted(lin["metrics"].items())
                    if k in ("accuracy", "roc_auc", "f1")
                ),
            )
        )
    for key, label, _ in w.milestones:
        at = w.reached.get(key)
        rows.append((f"t+{at[0]:5.1f}s" if at else "  (missing)", label))
    rows.append(("wall time", f"{wall_s:.0f} s"))  # fmt: skip
    width = max(len(k) for k, _ in rows)
    return [f"  {k:<{width}}  {v}" for k, v in rows]
