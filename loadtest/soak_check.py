"""The soak's verdict (R17): loss and duplicates, recovery per fault, memory growth, metric series.

Pure functions over what the soak measured, so each check is unit-tested with hand-made inputs.

>>> count_delivery([True, True, False, True], [1, 2, 0, 0]).lost
1
>>> round(growth([(t, 100.0 + (t >= 80) * 5) for t in range(100)], 10, 100).ratio, 3)
1.05
"""

from __future__ import annotations

import dataclasses
import statistics
from collections.abc import Mapping, Sequence
from typing import Any

RECOVERY_LIMIT_S = 60.0
GROWTH_LIMIT = 0.10  # relative, median RSS of the last 20% vs the period just after warm-up
TAIL_FRACTION = 0.20
# A process restarted by a fault first catches up a backlog in large batches, and the allocator
# keeps that high-water mark: RSS is judged within each process, from this long after its start
# (the first process: from the end of warm-up), never across a restart.
SETTLE_S = 60.0
# Redis holds drift's join entries for the join TTL: a fault that stalls drift empties them and
# its recovery refills them, so Redis is judged on the samples taken away from faults.
QUIET_MARGIN_S = 10.0
MIN_JUDGED_S = 90.0  # a process that lived less than this after settling is too short to judge
# A restarted service reconnects (broker, coordinator, Redis) with a few more sockets than the
# process it replaced; a descriptor leak grows without bound, so a few more are not growth.
FD_SLACK = 8
SERIES_SLACK = 50  # metric lines a service may add after warm-up (new model versions, rules)


@dataclasses.dataclass(frozen=True)
class Check:
    """One named pass/fail line of the summary."""

    name: str
    passed: bool
    detail: str


@dataclasses.dataclass(frozen=True)
class Delivery:
    """Events acknowledged by the broker against champion predictions read back."""

    acknowledged: int
    answered: int
    lost: int
    duplicates: int  # champion rows beyond the first, over acknowledged events
    lost_examples: tuple[int, ...]


def count_delivery(acked: Sequence[bool], champion_rows: Sequence[int]) -> Delivery:
    """Loss and duplicates of event i from its ack flag and its number of champion rows."""
    acknowledged = answered = duplicates = 0
    lost: list[int] = []
    for i, ok in enumerate(acked):
        if not ok:
            continue  # not acknowledged: its fate is unknown, neither lost nor owed
        acknowledged += 1
        rows = champion_rows[i] if i < len(champion_rows) else 0
        if rows:
            answered += 1
            duplicates += rows - 1
        else:
            lost.append(i)
    return Delivery(acknowledged, answered, len(lost), duplicates, tuple(lost[:10]))


def duplicate_bound(scorer_kills: int, broker_pauses: int, batch_size: int) -> int:
    """At-least-once allowance (R3): one batch replayed per scorer kill or broker pause."""
    return (scorer_kills + broker_pauses) * batch_size


@dataclasses.dataclass(frozen=True)
class Growth:
    """Median of a series just after warm-up and over the run's last 20%."""

    baseline: float
    final: float

    @property
    def ratio(self) -> float:
        """final / baseline (1.0 when there is no baseline)."""
        return self.final / self.baseline if self.baseline else 1.0


def growth(samples: Sequence[tuple[float, float]], warmup_end: float, run_end: float) -> Growth:
    """Compare the median of (t, value) samples in the 20% after warm-up and the last 20%."""
    span = TAIL_FRACTION * max(0.0, run_end - warmup_end)
    early = [v for t, v in samples if warmup_end <= t < warmup_end + span]
    late = [v for t, v in samples if run_end - span <= t <= run_end]
    if not early or not late:
        return Growth(0.0, 0.0)
    return Growth(statistics.median(early), statistics.median(late))


def process_growth(
    samples: Sequence[tuple[float, float, int]], warmup_end: float, run_end: float
) -> list[tuple[int, float, Growth]]:
    """(pid, judged span, growth) of each process in (t, value, pid) samples that lived long
    enough after settling; growth within a process, from settled to its last 20%."""
    spans: dict[int, list[tuple[float, float]]] = {}
    for t, value, pid in samples:
        spans.setdefault(pid, []).append((t, value))
    out = []
    for pid, points in spans.items():
        first, last = points[0][0], min(points[-1][0], run_end)
        start = warmup_end if first <= warmup_end else first + SETTLE_S
        if last - start >= MIN_JUDGED_S:
            out.append((pid, last - start, growth(points, start, last)))
    return out


def check_process_growth(
    series: Mapping[str, Sequence[tuple[float, float, int]]],
    warmup_end: float,
    run_end: float,
    what: str,
    limit: float = GROWTH_LIMIT,
) -> Check:
    """Every process of every service long-lived enough to judge grows less than `limit`
    (relative) within its own life; a service with no such process fails."""
    parts, bad = [], []
    for name, samples in sorted(series.items()):
        judged = process_growth(samples, warmup_end, run_end)
        if not judged:
            bad.append(f"{name}: no process lived {MIN_JUDGED_S:.0f} s after settling")
            continue
        changes = [(g.ratio - 1.0, pid, span) for pid, span, g in judged]
        worst, pid, span = max(changes)
        parts.append(
            f"{name} {worst:+.1%}" + (f" (worst of {len(judged)})" if len(judged) > 1 else "")
        )
        if worst >= limit:
            bad.append(f"{name} {worst:+.1%} (pid {pid}, over {span:.0f} s)")
    return Check(
        f"{what} growth within each process < {limit:.0%} after settling",
        bool(series) and not bad,
        ", ".join(parts) + (f"; failing: {', '.join(bad)}" if bad else ""),
    )


def quiet(
    samples: Sequence[tuple[float, float]],
    faults: Sequence[Mapping[str, Any]],
    margin_s: float = QUIET_MARGIN_S,
) -> list[tuple[float, float]]:
    """The samples taken outside every fault's span: from its start to its end plus its
    recovery time (60 s when it never recovered) plus a margin."""
    spans = []
    for f in faults:
        if f.get("skipped"):
            continue
        start = float(f["at_s"])
        took = f.get("recovery_s")
        end = float(f.get("end_s", start)) + (RECOVERY_LIMIT_S if took is None else took)
        spans.append((start, end + margin_s))
    return [(t, v) for t, v in samples if not any(a <= t <= b for a, b in spans)]


def check_delivery(delivery: Delivery, bound: int) -> list[Check]:
    """Nothing lost; duplicates within the at-least-once bound."""
    return [
        Check(
            "nothing lost",
            delivery.acknowledged > 0 and delivery.lost == 0,
            f"{delivery.answered:,} of {delivery.acknowledged:,} acknowledged events answered "
            f"by the champion, {delivery.lost:,} lost"
            + (
                f" (e.g. event {', '.join(map(str, delivery.lost_examples))})"
                if delivery.lost
                else ""
            ),
        ),  # fmt: skip
        Check(
            "duplicates within the at-least-once bound",
            delivery.duplicates <= bound,
            f"{delivery.duplicates:,} duplicate champion rows, bound {bound:,}",
        ),
    ]


def check_recovery(faults: Sequence[Mapping[str, Any]], limit_s: float = RECOVERY_LIMIT_S) -> Check:
    """Every fault that ran recovered, each within `limit_s` seconds (skipped ones are named)."""
    skipped = [f["kind"] for f in faults if f.get("skipped")]
    faults = [f for f in faults if not f.get("skipped")]
    slow = [
        f"{f['kind']}@{f['at_s']:.0f}s: "
        + ("never" if f.get("recovery_s") is None else f"{f['recovery_s']:.1f} s")
        for f in faults
        if f.get("recovery_s") is None or f["recovery_s"] > limit_s
    ]
    times = [f["recovery_s"] for f in faults if f.get("recovery_s") is not None]
    worst = f"worst {max(times):.1f} s" if times else "none measured"
    return Check(
        f"recovery after each fault <= {limit_s:.0f} s",
        bool(faults) and not slow,
        f"{len(faults)} fault(s), {worst}"
        + (f"; too slow: {', '.join(slow)}" if slow else "")
        + (f"; skipped (run behind schedule): {', '.join(skipped)}" if skipped else ""),
    )


def check_growth(
    series: Mapping[str, Sequence[tuple[float, float]]],
    warmup_end: float,
    run_end: float,
    what: str,
    limit: float = GROWTH_LIMIT,
    slack: float = 0.0,
) -> Check:
    """Each named series grows less than `limit` (relative) from just after warm-up to the last
    20%, or by no more than `slack` (absolute)."""
    parts, bad = [], []
    for name, samples in sorted(series.items()):
        g = growth(samples, warmup_end, run_end)
        if not g.baseline:
            bad.append(f"{name}: no samples")
            continue
        change = g.ratio - 1.0
        parts.append(f"{name} {change:+.1%}")
        if change >= limit and g.final - g.baseline > slack:
            bad.append(f"{name} {change:+.1%}")
    within = f" (or <= {slack:g} more)" if slack else ""
    return Check(
        f"{what} growth < {limit:.0%}{within} after warm-up",
        bool(series) and not bad,
        ", ".join(parts) + (f"; failing: {', '.join(bad)}" if bad else ""),
    )


def check_series(after_warmup: Mapping[str, int], at_end: Mapping[str, int]) -> Check:
    """Each service's /metrics line count stays bounded between warm-up and the end."""
    parts, bad = [], []
    for name in sorted(after_warmup):
        start, end = after_warmup[name], at_end.get(name)
        if end is None:
            bad.append(f"{name}: not read at the end")
            continue
        parts.append(f"{name} {start}->{end}")
        if end - start > max(SERIES_SLACK, start // 4):
            bad.append(f"{name} +{end - start}")
    return Check(
        "bounded metric series",
        bool(after_warmup) and not bad,
        ", ".join(parts) + (f"; failing: {', '.join(bad)}" if bad else ""),
    )


def summary_lines(checks: Sequence[Check]) -> list[str]:
    """The printed verdict: one line per check, then PASS or FAIL naming the failed checks."""
    lines = [f"  {'ok  ' if c.passed else 'FAIL'} {c.name}: {c.detail}" for c in checks]
    failed = [c.name for c in checks if not c.passed]
    lines.append("soak: PASS" if not failed else f"soak: FAIL ({'; '.join(failed)})")
    return lines
