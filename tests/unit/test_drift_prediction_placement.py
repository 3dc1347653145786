"""Count windows pair predictions with their events' windows, whatever order they arrive in."""

from __future__ import annotations

import pytest

from services.common import serde
from services.drift.join import Joiner
from services.drift.monitor import DeploymentMonitor, MonitorConfig
from services.drift.reference import ReferenceBook
from tests.drift_support import (
    T0,
    content,
    deployment,
    event,
    model_record,
    numeric_baseline,
    prediction,
)

pytestmark = pytest.mark.unit
C = content("a" * 64, 1, [numeric_baseline("x")])


def monitor() -> DeploymentMonitor:
    book = ReferenceBook()
    book.apply(serde.decode(serde.encode("ModelPublished", model_record(C)))[1])
    book.apply(deployment("d", C))
    return DeploymentMonitor(book.get("d"), MonitorConfig(window_count=100))


def _predict(m: DeploymentMonitor, ids: range) -> None:
    rows = [prediction("d", i, C, 0.3, T0 + i) for i in ids]
    m.add_predictions(rows, [r["association_id"] for r in rows], Joiner({}))


def test_an_external_services_batch_of_events_and_predictions_fills_every_window():
    m = monitor()
    m.add_events([event("d", i, T0 + i, {"x": 0.1}) for i in range(300)])
    _predict(m, range(300))  # the same batch: reported with their events
    closed = m.close_due()
    assert [(w.figures.event_count, w.figures.prediction_count) for w in closed] == [(100, 100)] * 3


def test_a_scorers_predictions_trailing_their_events_stay_with_the_open_windows():
    m = monitor()
    m.add_events([event("d", i, T0 + i, {"x": 0.1}) for i in range(150)])
    _predict(m, range(120))  # 100 to the first window, 20 to the second
    (first,) = m.close_due()
    assert (first.figures.event_count, first.figures.prediction_count) == (100, 100)
    m.add_events([event("d", i, T0 + i, {"x": 0.1}) for i in range(150, 200)])
    _predict(m, range(120, 200))
    (second,) = m.close_due()
    assert (second.figures.event_count, second.figures.prediction_count) == (100, 100)
