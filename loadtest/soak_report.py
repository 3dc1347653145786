"""The soak's report: checks from the samples, faults and delivery counts; JSON and PNG files.

>>> samples = [{"t": 1.0, "rss_mb": {"drift": 80.0}}, {"t": 2.0, "rss_mb": {"drift": 81.0}}]
>>> series(samples, "rss_mb")
{'drift': [(1.0, 80.0), (2.0, 81.0)]}
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from loadtest import soak_check
from loadtest.soak_check import Check, Delivery


def series(
    samples: Sequence[Mapping[str, Any]], field: str
) -> dict[str, list[tuple[float, float]]]:
    """Per-name (t, value) series of a dict-valued sample field, gaps left out."""
    out: dict[str, list[tuple[float, float]]] = {}
    for s in samples:
        for name, value in (s.get(field) or {}).items():
            if value is not None:
                out.setdefault(name, []).append((float(s["t"]), float(value)))
    return out


def process_series(
    samples: Sequence[Mapping[str, Any]], field: str
) -> dict[str, list[tuple[float, float, int]]]:
    """Per-name (t, value, pid) series of a dict-valued sample field, gaps left out."""
    out: dict[str, list[tuple[float, float, int]]] = {}
    for s in samples:
        pids = s.get("pid") or {}
        for name, value in (s.get(field) or {}).items():
            if value is not None and name in pids:
                out.setdefault(name, []).append((float(s["t"]), float(value), int(pids[name])))
    return out


def evaluate(
    samples: Sequence[Mapping[str, Any]],
    faults: Sequence[Mapping[str, Any]],
    delivery: Delivery,
    dup_bound: int,
    warmup_s: float,
    end_s: float,
    lines_after_warmup: Mapping[str, int],
    lines_at_end: Mapping[str, int],
) -> list[Check]:
    """Every R17 check, in the order the summary prints them."""
    redis = [(float(s["t"]), float(s["redis_mb"])) for s in samples if s.get("redis_mb")]
    return [
        *soak_check.check_delivery(delivery, dup_bound),
        soak_check.check_recovery(faults),
        soak_check.check_process_growth(process_series(samples, "rss_mb"), warmup_s, end_s, "RSS"),
        soak_check.check_growth(
            series(samples, "fds"), warmup_s, end_s, "open files", slack=soak_check.FD_SLACK
        ),
        soak_check.check_growth(
            {"redis": soak_check.quiet(redis, faults)},
            warmup_s,
            end_s,
            "Redis used_memory (away from faults)",
        ),
        soak_check.check_series(lines_after_warmup, lines_at_end),
    ]


def write_json(path: Path, report: Mapping[str, Any]) -> None:
    """The whole report as JSON."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2, default=str) + "\n")


def plot(path: Path, samples: Sequence[Mapping[str, Any]], faults: Sequence[Mapping[str, Any]],
         warmup_s: float) -> None:  # fmt: skip
    """RSS per service, consumer lag and Redis memory over time, with the faults marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(3, 1, figsize=(11, 9), sharex=True)
    for name, points in sorted(series(samples, "rss_mb").items()):
        axes[0].plot(*zip(*points, strict=True), label=name)
    axes[0].set_ylabel("RSS (MiB)")
    for name, points in sorted(series(samples, "lag").items()):
        axes[1].plot(*zip(*points, strict=True), label=f"{name} group")
    axes[1].set_ylabel("consumer lag (records)")
    redis = [(s["t"], s["redis_mb"]) for s in samples if s.get("redis_mb") is not None]
    if redis:
        axes[2].plot(*zip(*redis, strict=True), label="redis used_memory")
    axes[2].set_ylabel("Redis (MiB)")
    axes[2].set_xlabel("seconds since the load started")
    for ax in axes:
        ax.axvspan(0, warmup_s, color="0.92")
        for f in faults:
            ax.axvline(f["at_s"], color="tab:red", alpha=0.35, linewidth=1)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(loc="upper left", fontsize=8)
    for f in faults:
        axes[0].annotate(f["kind"], (f["at_s"], 1.0), xycoords=("data", "axes fraction"),
                         rotation=90, fontsize=7, va="top", ha="right")  # fmt: skip
    axes[0].set_title("streamops soak (R17): grey = warm-up, red lines = faults")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
