"""A monitor in a sharded drift group hands its closed windows over as parts, with the mark
the merge waits for, and follows the group's clock (services/drift/merge.py)."""

from __future__ import annotations

import pytest

from services.drift.monitor import DeploymentMonitor, MonitorConfig
from tests.drift_support import (
    T0,
    categorical_baseline,
    champion_reference,
    content,
    event,
    numeric_baseline,
)

pytestmark = pytest.mark.unit
MINUTE = 60_000


def _monitor(shards: int, window_count: int = 0) -> DeploymentMonitor:
    features = [numeric_baseline("x"), categorical_baseline("k", {"a": 50, "b": 50})]
    champ = content("c" * 64, 1, features)
    ref = champion_reference(champ)
    config = MonitorConfig(window_count=window_count, lateness_ms=0, shards=shards)
    return DeploymentMonitor(ref, config)


def _events(times: list[int]) -> list[dict]:
    return [event("d", i, t, {"x": 0.5, "k": "a"}) for i, t in enumerate(times)]


def test_a_closed_window_becomes_a_part_keyed_by_its_index_since_the_epoch():
    m = _monitor(shards=2)
    m.add_events(_events([T0 + 5, T0 + 10, T0 + MINUTE + 1]))
    assert m.close_due() == [], "no figures in a process of a sharded group"
    (part,) = m.take_partials()
    assert (part.deployment, part.model_id, part.key) == ("d", "c" * 64, T0 // MINUTE)
    assert part.state["counts"][0] == 2 and m.take_partials() == []
    assert m.mark() == T0 // MINUTE + 1, "every window below the mark is closed here"
    assert m.latest() == T0 + MINUTE + 1


def test_the_group_clock_closes_a_window_of_a_quiet_process():
    m = _monitor(shards=2)
    m.add_events(_events([T0 + 5]))
    m.close_due()
    assert m.take_partials() == [] and m.mark() == T0 // MINUTE
    assert not m.advance(T0), "an earlier time does not move the clock"
    assert m.advance(T0 + 3 * MINUTE)
    m.close_due()
    assert [p.key for p in m.take_partials()] == [T0 // MINUTE]
    assert m.mark() == T0 // MINUTE + 3


def test_count_windows_close_as_parts_keyed_by_sequence():
    m = _monitor(shards=2, window_count=10)
    m.add_events(_events([T0 + i for i in range(25)]))
    m.close_due()
    assert [(p.key, p.state["counts"][0]) for p in m.take_partials()] == [(0, 10), (1, 10)]
    assert m.mark() == 2 and m.latest() is None
    assert not m.advance(T0 + 10 * MINUTE), "count windows have no clock to follow"


def test_one_process_closes_windows_with_figures_and_no_parts():
    m = _monitor(shards=1)
    m.add_events(_events([T0 + 5, T0 + MINUTE + 1]))
    (closed,) = m.close_due()
    assert closed.figures.event_count == 1 and m.take_partials() == []
