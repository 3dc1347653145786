"""Seeded simulation: no-drift false-alarm rate and shift detection at the suggested thresholds.

Each window gets a fresh 10,000-row reference (so the rates hold over references, not for one
lucky baseline) and a window of n events; a window "alarms" when the statistic is beyond its
suggested warning threshold. Run with ``-s`` to print the measured table.
"""

from __future__ import annotations

import numpy as np
import pytest

from services.drift.statistics.registry import CATEGORICAL, NUMERIC
from tests.unit.test_drift_statistics_contract import baseline, flagged, reference, shifted

pytestmark = pytest.mark.unit

WINDOWS = {1_000: 300, 5_000: 100}
SCENARIOS = {"numeric": ["none", "mean", "variance"], "categorical": ["none", "new_category"]}


def alarm_rates(kind: str, n: int, windows: int, seed: int) -> dict[tuple[str, str], float]:
    """Share of windows flagged, by (statistic, scenario)."""
    rng = np.random.default_rng(seed)
    classes = NUMERIC if kind == "numeric" else CATEGORICAL
    hits: dict[tuple[str, str], int] = {}
    for _ in range(windows):
        base = baseline(kind, rng)
        for scenario in SCENARIOS[kind]:
            if scenario == "none":
                values = reference(kind, rng, n)
            else:
                values = shifted(kind, scenario, rng, n)
            for cls in classes:
                stat = cls(base)
                stat.update(values)
                value = stat.get()
                assert value is not None
                key = (cls.name, scenario)
                hits[key] = hits.get(key, 0) + int(flagged(cls, value))
    return {k: v / windows for k, v in hits.items()}


@pytest.mark.parametrize("kind", ["numeric", "categorical"])
@pytest.mark.parametrize("n", sorted(WINDOWS))
def test_false_alarms_at_most_one_percent_and_shifts_flagged(kind: str, n: int) -> None:
    rates = alarm_rates(kind, n, WINDOWS[n], seed=n + len(kind))
    for (stat, scenario), rate in sorted(rates.items()):
        print(f"{kind:11s} n={n:5d} {stat:15s} {scenario:13s} alarm rate {rate:.3f}")
    for (stat, scenario), rate in rates.items():
        if scenario == "none":
            assert rate <= 0.01, (stat, rate)
        elif scenario in ("mean", "new_category"):
            assert rate >= 0.99, (stat, scenario, rate)
        else:  # variance x2 is the subtlest shift for binned statistics at n = 1,000
            assert rate >= 0.95, (stat, scenario, rate)
