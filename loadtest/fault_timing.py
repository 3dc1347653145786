"""Recovery figures from timed samples: the pure arithmetic of the fault benchmarks (R2, R4, R8).

The benchmark's probes record what they see as ``(time in s, value)`` pairs, all on the wall
clock (broker append times are on it too, on this one machine); these functions turn them into
the figures judged against the targets in `docs/reliability.md`.

>>> first_rise([(9.0, 50), (10.2, 50), (11.0, 50), (13.5, 80)], after=10.0)
3.5
>>> back_under([(0.0, 10), (1.0, 4000), (2.5, 900), (4.0, 20)], start=0.5, end=20.0, limit=1000)
2.0
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

# librdkafka's transaction.timeout.ms when a producer does not set it (the scorer does not).
LIBRDKAFKA_TRANSACTION_TIMEOUT_MS = 60_000

Sample = tuple[float, float]


def first_rise(samples: Iterable[Sample], after: float) -> float | None:
    """Seconds from `after` to the first sample above the first one taken at or after it.

    For committed offsets sampled across a kill: the first sample after the kill is what the
    dead process left; the first one above it is the restarted process's first commit.
    """
    later = sorted((t, v) for t, v in samples if t >= after)
    if not later:
        return None
    base = later[0][1]
    return next((t - after for t, v in later[1:] if v > base), None)


def first_after(times: Iterable[float], after: float) -> float | None:
    """Seconds from `after` to the earliest of `times` later than it (None: there is none)."""
    later = [t for t in times if t > after]
    return min(later) - after if later else None


def back_under(
    samples: Iterable[Sample], start: float, end: float, limit: float, horizon: float = 60.0
) -> float | None:
    """Seconds from `start` until the value is under `limit` and stays so until `end`.

    Past `end` (the next membership change) a value still at or over the limit may yet come
    back under: the first sample under it before ``start + horizon`` counts. None: it did not.
    """
    settled: float | None = None
    for t, v in sorted(samples):
        if t < start:
            continue
        if t >= end:
            if settled is not None or t > start + horizon:
                break
            if v < limit:
                settled = t
                break
            continue
        if v >= limit:
            settled = None
        elif settled is None:
            settled = t
    return None if settled is None else round(settled - start, 3)


def peak(samples: Iterable[Sample], start: float, end: float) -> float | None:
    """The largest value sampled in [start, end) (None: no sample there)."""
    inside = [v for t, v in samples if start <= t < end]
    return max(inside) if inside else None


def delivery_counts(expected: set[str], seen: Iterable[str]) -> dict[str, int]:
    """Lost (expected, never seen), duplicates (rows beyond the first per id) and unexpected ids."""
    counts = Counter(seen)
    return {
        "lost": len(expected - counts.keys()),
        "duplicates": sum(c - 1 for c in counts.values() if c > 1),
        "unexpected": len(counts.keys() - expected),
    }


def duplicated(seen: Iterable[str]) -> set[str]:
    """The ids seen more than once."""
    return {k for k, c in Counter(seen).items() if c > 1}


def first_seen(rows: Iterable[tuple[float, Any]]) -> dict[Any, float]:
    """The earliest time each key appears among (time, key) rows."""
    out: dict[Any, float] = {}
    for t, key in rows:
        if key not in out or t < out[key]:
            out[key] = t
    return out


def swap_latencies(
    deployed: Mapping[int, float], seen: Mapping[int, float]
) -> dict[int, float | None]:
    """Per deployed version: seconds from its Deployment's append to its first prediction."""
    return {v: (round(seen[v] - t, 3) if v in seen else None) for v, t in sorted(deployed.items())}


def spread(values: Iterable[float | None]) -> dict[str, float | int | None]:
    """p50 and max of the measured values, and how many were measured out of how many."""
    values = list(values)
    measured = [v for v in values if v is not None]
    return {
        "p50": round(statistics.median(measured), 3) if measured else None,
        "max": round(max(measured), 3) if measured else None,
        "measured": len(measured),
        "of": len(values),
    }


def r2_bound_s(consumer_conf: Mapping[str, Any], producer_conf: Mapping[str, Any]) -> float:
    """R2's bound: session timeout + transaction timeout + 5 s, from the clients' config."""
    session_ms = consumer_conf["session.timeout.ms"]
    txn_ms = producer_conf.get("transaction.timeout.ms", LIBRDKAFKA_TRANSACTION_TIMEOUT_MS)
    return (session_ms + txn_ms) / 1000 + 5.0


def within(values: Iterable[float | None], bound: float) -> bool:
    """True when every value was measured and none exceeds the bound."""
    values = list(values)
    return bool(values) and all(v is not None and v <= bound for v in values)
