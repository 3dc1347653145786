"""The label figures of a window agree: labels that join predictions of earlier windows give a
coverage (not 0), the report counts them (``labels_joined``) and the labels of classes the
model does not know (``unknown_labels``)."""

from __future__ import annotations

import io
import json
from typing import Any

import fastavro
import pytest

from services.common import serde
from services.common.schemas import default_schemas
from services.common.serde import MAGIC, Serde
from services.drift.coverage import KEEP
from services.drift.join import Joiner
from services.drift.monitor import DeploymentMonitor, MonitorConfig
from services.drift.reference import ReferenceBook
from services.drift.report import drift_report
from services.registry.dashboard_data import window_series
from tests.drift_support import (
    T0,
    champion_reference,
    content,
    event,
    model_record,
    numeric_baseline,
    prediction,
)

pytestmark = pytest.mark.unit

CHAMP = content("c" * 64, 1, [numeric_baseline("x")])
WINDOW = 100


class Stream:
    """One deployment's monitor (count windows of 100) fed like the service feeds it."""

    def __init__(self) -> None:
        self.monitor = DeploymentMonitor(
            champion_reference(CHAMP), MonitorConfig(window_count=WINDOW, lateness_ms=0)
        )
        book = ReferenceBook()
        book.apply(model_record(CHAMP))
        self.joiner = Joiner({}, book.model_id)
        self.sent = 0
        self.reports: list[dict] = []
        self.transitions: list = []

    def window(self, labels: dict[int, Any] | None = None) -> dict:
        """A full window: its events and served predictions (class "1" for odd ids), then the
        labels given (association id number -> label) for earlier predictions; its report."""
        ids = range(self.sent, self.sent + WINDOW)
        self.sent += WINDOW
        preds = [prediction("d", i, CHAMP, 0.9 if i % 2 else 0.1, T0 + i) for i in ids]
        self.monitor.add_predictions(preds, [f"a{i}" for i in ids], self.joiner)
        for i, label in (labels or {}).items():
            self.monitor.add_joined(self.joiner.actual(f"a{i}", label, T0 + 10_000 + i))
        self.monitor.add_events([event("d", i, T0 + i, {"x": 0.0}) for i in ids])
        (closed,) = self.monitor.close_due()
        self.transitions += closed.transitions
        record = drift_report(closed.reference, closed.figures)
        self.reports.append(serde.decode(serde.encode("DriftReport", record))[1])
        return self.reports[-1]


def _truth(i: int) -> str:
    return "1" if i % 2 else "0"  # what the model predicts: every known label is right


def test_labels_of_an_earlier_window_give_this_window_coverage_and_a_count():
    s = Stream()
    first = s.window()  # labels come a window late: none yet
    assert (first["labels_joined"], first["label_coverage"], first["metrics"]) == (0, 0.0, {})
    second = s.window({i: _truth(i) for i in range(80)})  # 80 of the first window's 100
    assert second["metrics"]["accuracy"] == 1.0
    assert second["labels_joined"] == 80
    assert second["label_coverage"] == pytest.approx(0.8)  # was 0.0: its own had no label
    # The rest of the first window's labels and half of the second's, in the third window.
    third = s.window({i: _truth(i) for i in range(80, 150)})
    assert third["labels_joined"] == 70
    assert third["label_coverage"] == pytest.approx((100 + 50) / (100 + 100))
    fourth = s.window()  # the labels stopped: coverage says so
    assert (fourth["labels_joined"], fourth["label_coverage"]) == (0, 0.0)


def test_a_window_labelling_its_own_predictions_reads_their_share_as_before():
    s = Stream()
    ids = range(WINDOW)
    preds = [prediction("d", i, CHAMP, 0.9, T0 + i) for i in ids]
    s.monitor.add_predictions(preds, [f"a{i}" for i in ids], s.joiner)
    for i in range(30):
        s.monitor.add_joined(s.joiner.actual(f"a{i}", "1", T0 + 500 + i))
    s.monitor.add_events([event("d", i, T0 + i, {"x": 0.0}) for i in ids])
    (closed,) = s.monitor.close_due()
    assert closed.figures.label_coverage == pytest.approx(0.3)
    assert closed.figures.labels_joined == 30


def test_labels_for_windows_older_than_the_book_count_against_the_pool():
    s = Stream()
    for _ in range(KEEP + 2):
        s.window()  # no labels for a while
    late = s.window({0: "0", 1: "1", 2: "0"})  # the first window's, KEEP + 2 windows back
    assert late["labels_joined"] == 3
    assert late["label_coverage"] == pytest.approx(3 / 200)  # the two pooled windows
    assert late["label_coverage"] > 0


def test_the_coverage_book_survives_the_state_round_trip():
    s = Stream()
    s.window()
    restored = DeploymentMonitor.from_state(
        lambda _mid: s.monitor.reference,
        s.monitor.config,
        json.loads(json.dumps(s.monitor.state())),
    )
    assert restored is not None
    s.monitor = restored
    second = s.window({i: _truth(i) for i in range(40)})
    assert second["label_coverage"] == pytest.approx(0.4)


def test_labels_of_a_class_the_model_does_not_know_are_counted_and_still_wrong():
    s = Stream()
    s.window()
    labels = {i: _truth(i) for i in range(10)}
    labels |= {10: "2", 11: "yes", 12: 1.0}  # the number 1.0 is the class "1": known
    second = s.window(labels)
    assert second["labels_joined"] == 13
    assert second["unknown_labels"] == 2
    # The unknown ones count as wrong answers (the model said "0" for 10, "1" for 11), as does
    # 12 (it said "0"): 10 right of 13.
    assert second["metrics"]["accuracy"] == pytest.approx(10 / 13)
    assert s.window()["unknown_labels"] == 0


def test_a_drift_report_of_the_previous_schema_reads_with_the_new_fields_defaults():
    schemas = default_schemas()
    (fp,) = [f for f in schemas.earlier_fingerprints() if schemas.name_for(f) == "DriftReport"]
    s = Stream()
    s.window()
    old = s.reports[-1]
    for key in ("labels_joined", "unknown_labels"):
        del old[key]
    for f in old["features"]:
        for key in ("observations", "psi_bins", "psi_needs"):
            del f[key]
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, schemas.earlier_writer(fp), old)
    name, record = Serde(schemas).decode(MAGIC + fp + buf.getvalue(), expected="DriftReport")
    assert name == "DriftReport"
    assert (record["labels_joined"], record["unknown_labels"]) == (0, 0)
    assert record["features"][0]["psi_bins"] is None and record["features"][0]["psi_needs"] == 0


def test_the_dashboard_rows_carry_the_label_counts_and_older_reports_read_none():
    s = Stream()
    s.window()
    s.window({i: _truth(i) for i in range(20)} | {20: "2"})
    older = {k: v for k, v in s.reports[0].items() if k not in ("labels_joined", "unknown_labels")}
    rows = window_series([older, s.reports[1]])
    assert [(r["labels_joined"], r["unknown_labels"]) for r in rows] == [(0, 0), (21, 1)]
    assert rows[1]["label_coverage"] == pytest.approx(0.21)


def test_a_change_point_in_the_error_stream_is_a_breach_a_threshold_can_fire_on():
    s = Stream()
    on_change = {"metric": "change_point", "feature": None, "warning": 1.0, "critical": 1.0,
                 "hysteresis": 0.0, "direction": "above"}  # fmt: skip
    s.monitor = DeploymentMonitor(
        champion_reference(CHAMP, thresholds=[on_change]),
        MonitorConfig(window_count=WINDOW, lateness_ms=0),
    )
    s.window()
    for n in range(8):  # labels of the window before: right four times, then always wrong
        start = s.sent - WINDOW
        labels = {i: _truth(i) if n < 4 else str(1 - int(_truth(i))) for i in range(start, s.sent)}
        s.window(labels)
    assert not any(r["change_point"] for r in s.reports[:5]), "no change while it is right"
    assert any(r["change_point"] for r in s.reports[5:]), "the detector sees the change"
    firing = [(t.metric, t.severity) for t in s.transitions if t.kind == "firing"]
    assert firing[:1] == [("change_point", "critical")]
