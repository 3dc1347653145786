"""Writes BENCHMARKS.md from loadtest/results/*.json, with the machine and versions.

Most result files become a figure / value / target table; the drift results carry their own
targets and verdicts (``targets``, ``met``) and get a target / measured / verdict table first;
the fault results (``checks``, each with its target and verdict) get such a table, then details.
"""

from __future__ import annotations

import json
import os
import platform
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

# The issue targets each figure is judged against (shown next to the measurement).
TARGETS = {
    "scorer": {
        "events_per_s": ">= 40,000 (aim 60,000); `scorer_processes` scorers in one group",
        "events_per_s_one_process": "(one scorer process, for comparison)",
        "vs_loop": ">= 10x baseline (a)",
        "vs_rest": ">= 100x baseline (b)",
        "latency_ms_p99_5k": "<= 15 ms",
        "relay_latency_ms_p99_5k": "(floor: the same two hops, runner and settings, no model)",
        "latency_p99_5k_vs_floor": "(scorer p99 / floor p99, same run)",
        "hot_swap_ms": "<= 1,000 ms",
    },
}


# Drift figures shown in the verdict table, so not repeated among the other figures.
DRIFT_JUDGED = {
    "events_per_s",
    "group_events_per_s",
    "scorer_events_per_s",
    "scorer_events_per_s_one_process",
    "false_alarm_rate",
    "false_alarm_rate_upper_95",
    "false_alarm_windows",
    "no_drift_windows",
    "detection_delay_windows",
    "detection_delay_by_seed",
    "targets",
    "met",
    "same_stream_kept_up",
    "same_stream_runs",
    "same_stream_seconds",
    "same_stream_drift_processes",
    "same_stream_reports",
}


def _verdict(met: bool | None) -> str:
    return "not measured" if met is None else "met" if met else "**missed**"


def _same_stream(data: dict[str, Any]) -> str:
    """Per rate: when the scorers and drift were done after the feed (s)."""
    runs = data.get("same_stream_runs")
    if not runs:
        return "not measured"
    return "; ".join(
        f"{r['rate']:,}/s: scorers {r['scorers_done_after_feed_s']:g} s, "
        f"drift {r['drift_done_after_feed_s']:g} s (CPU per event: scorers "
        f"{r.get('scorers_cpu_us_per_event', '?')} us, "
        f"drift {r.get('drift_cpu_us_per_event', '?')} us"
        + (
            f"; Redis rewriting its append-only file ~{r['redis_rewriting_s']:g} s"
            if r.get("redis_rewriting_s")
            else ""
        )
        + ")"
        for r in runs
    )


def drift_lines(data: dict[str, Any]) -> list[str]:
    """The drift section: each target with its measurement and verdict, then the settings."""
    t, met = data["targets"], data["met"]
    eps, scorer = data.get("events_per_s"), data.get("scorer_events_per_s")
    group = data.get("group_events_per_s")
    one = data.get("scorer_events_per_s_one_process")
    rows = [
        (
            "events/s per drift process (each event with its prediction)",
            f">= {t['events_per_s']:,} (aim 100,000)",
            "not measured" if eps is None else f"{eps:,}",
            met.get("events_per_s"),
        ),
        (
            "drain rate against the scorers' (each service alone on the machine)",
            "drift events/s >= scorer events/s"
            + ("" if scorer is None else f" ({scorer:,}, scorer.json)"),
            "not measured" if eps is None else f"{eps:,}",
            met.get("keeps_up_with_scorer"),
        ),
        (
            f"drain rate of a drift group of {data.get('group_processes', '?')} processes "
            "against the scorers' (each group alone on the machine)",
            "drift group events/s >= scorer events/s",
            "not measured" if group is None else f"{group:,}",
            met.get("group_keeps_up_with_scorer"),
        ),
        (
            "keeps up with one scorer process (both single processes, same machine)",
            "drift events/s >= one scorer's events/s"
            + ("" if one is None else f" ({one:,}, scorer.json)"),
            "not measured" if eps is None else f"{eps:,}",
            met.get("keeps_up_with_one_scorer_process"),
        ),
        (
            "keeps up with two scorers on one live stream (all running together; drift "
            f"processes: {data.get('same_stream_drift_processes', 1)})",
            f"at every rate the scorers are done <= {t.get('same_stream_catch_up_s', '?')} s "
            f"after the feed ({data.get('same_stream_seconds', '?')} s per rate), drift is done "
            "<= that long after them",
            _same_stream(data)
            + (f"; {data['same_stream_reports']} reports" if "same_stream_reports" in data else ""),
            met.get("keeps_up_on_one_stream"),
        ),
        (
            "false-alarm rate over no-drift windows",
            f"<= {t['false_alarm_rate']:.0%}",
            f"{data['false_alarm_rate']:.2%} ({data['false_alarm_windows']} of "
            f"{data['no_drift_windows']}; 95% upper bound {data['false_alarm_rate_upper_95']:.2%})",
            met.get("false_alarm_rate"),
        ),
    ]
    for name, limit in t["detection_delay_windows"].items():
        delay = data["detection_delay_windows"].get(name)
        by_seed = data["detection_delay_by_seed"].get(name)
        rows.append(
            (
                f"windows to detection: {name} (start window = 0)",
                f"<= {limit}",
                f"{'never' if delay is None else delay} (per seed: {by_seed})",
                met.get(f"detection_delay_windows.{name}"),
            )
        )
    lines = ["| figure | target | measured | verdict |", "|---|---|---|---|"]
    lines += [f"| {f} | {target} | {value} | {_verdict(ok)} |" for f, target, value, ok in rows]
    lines += ["", "| setting or detail | value |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in data.items() if k not in DRIFT_JUDGED]
    return lines


def _cell(value: Any) -> str:
    if isinstance(value, list) and value and not any(isinstance(v, list | dict) for v in value):
        return ", ".join(str(v) for v in value)
    if isinstance(value, list | dict):
        return json.dumps(value, separators=(", ", ": "))
    return str(value)


def checks_lines(data: dict[str, Any]) -> list[str]:
    """Judged figures (``checks``: id, figure, target, measured, met), then each part's details."""
    lines = ["| id | figure | target | measured | verdict |", "|---|---|---|---|---|"]
    lines += [
        f"| {c['id']} | {c['figure']} | {c['target']} | {_cell(c['measured'])} | "
        f"{_verdict(c['met'])} |"
        for c in data["checks"]
    ]
    lines += ["", "| part | detail | value |", "|---|---|---|"]
    lines += [
        f"| {part} | {k} | {_cell(v)} |"
        for part, details in data.items()
        if part != "checks"
        for k, v in details.items()
    ]
    return lines


def main() -> int:
    """Render every result file as a table."""
    lines = [
        "# Benchmarks",
        "",
        "Written by `make bench`; every figure is measured side by side with its baseline in "
        "the same run, on the same machine and broker.",
        "",
        f"- machine: {platform.machine()}, {os.cpu_count()} cores, {platform.platform()}",
        f"- python {platform.python_version()}, confluent-kafka "
        f"{metadata.version('confluent-kafka')}, Kafka 4.1.2 (single KRaft node, loopback)",
        "",
    ]
    for path in sorted((ROOT / "loadtest" / "results").glob("*.json")):
        data = json.loads(path.read_text())
        lines += [f"## {path.stem}", ""]
        if "met" in data:
            lines += drift_lines(data)
        elif "checks" in data:
            lines += checks_lines(data)
        else:
            targets = TARGETS.get(path.stem, {})
            lines += ["| figure | value | target |", "|---|---|---|"]
            lines += [f"| {k} | {v} | {targets.get(k, '')} |" for k, v in data.items()]
        lines.append("")
    lines += ["Where the time goes, and what was missed: `docs/performance.md`.", ""]
    (ROOT / "BENCHMARKS.md").write_text("\n".join(lines))
    print("wrote BENCHMARKS.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
