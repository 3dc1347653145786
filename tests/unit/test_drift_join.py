"""The join of predictions and actuals, and the accuracy figures computed from it."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.metrics import f1_score, precision_score, recall_score, roc_auc_score

from services.drift.accuracy import ModelAccuracy, auc
from services.drift.join import Joiner
from services.drift.monitor import DeploymentMonitor, MonitorConfig
from tests.drift_support import T0, champion_reference, content, event, numeric_baseline, prediction

pytestmark = pytest.mark.unit


def test_auc_equals_sklearn_on_a_random_sample_with_ties():
    rng = np.random.default_rng(7)
    labels = rng.integers(0, 2, 3000)
    scores = np.round(rng.random(3000) * 0.6 + labels * 0.3, 2)  # rounded: many ties
    assert auc(scores, labels) == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)
    assert auc(scores, np.ones(3000, dtype=int)) is None


def test_classification_figures_equal_sklearn():
    rng = np.random.default_rng(3)
    truth = rng.choice(["0", "1"], 500)
    scores = np.clip(rng.random(500) * 0.7 + (truth == "1") * 0.3, 0, 1)
    preds = np.where(scores >= 0.5, "1", "0")
    acc = ModelAccuracy("classification", positive="1")
    for lo in range(0, 500, 128):  # batches add up
        acc.update(
            preds[lo : lo + 128].tolist(),
            scores[lo : lo + 128].tolist(),
            truth[lo : lo + 128].tolist(),
        )
    m = ModelAccuracy.from_state(acc.state()).metrics()
    assert m["accuracy"] == pytest.approx(np.mean(preds == truth))
    assert m["precision"] == pytest.approx(precision_score(truth, preds, pos_label="1"))
    assert m["recall"] == pytest.approx(recall_score(truth, preds, pos_label="1"))
    assert m["f1"] == pytest.approx(f1_score(truth, preds, pos_label="1"))
    assert m["auc"] == pytest.approx(roc_auc_score(truth == "1", scores))


def test_regression_figures():
    acc = ModelAccuracy("regression")
    errors = acc.update([1.0, 2.0, 4.0], [None, None, None], [1.5, 2.0, 1.0])
    assert errors.tolist() == [0.5, 0.0, 3.0]
    m = acc.metrics()
    assert m["mae"] == pytest.approx(3.5 / 3)
    assert m["rmse"] == pytest.approx(((0.25 + 9) / 3) ** 0.5)


def test_first_actual_wins_and_duplicates_are_ignored():
    j = Joiner({})
    assert j.prediction("k", "m", {"y": "1", "t": 10}) == []
    rows = j.actual("k", {"y": "1", "t": 30})
    assert [(r.model_id, r.label, r.delay_ms) for r in rows] == [("m", "1", 20)]
    assert j.actual("k", {"y": "0", "t": 40}) is None
    assert j.prediction("k", "m", {"y": "0", "t": 10}) is None
    assert j.writes() == [("k", '{"p:m":{"y":"1","t":10},"a":{"y":"1","t":30}}', True)]


def test_entries_read_back_from_redis_keep_their_meaning():
    stored = b'{"p:m":{"y":"1","t":10,"v":3,"s":true,"w":4},"a":{"y":"0","t":70}}'
    j = Joiner({"k": stored})
    assert j.actual("k", {"y": "1", "t": 99}) is None  # the stored actual came first
    rows = j.prediction("k", "c", {"y": "0", "t": 10, "v": 4, "s": False})
    assert [(r.model_id, r.version, r.label, r.served) for r in rows] == [("c", 4, "0", False)]
    ((key, value, new),) = j.writes()
    assert (key, new) == ("k", False), "an entry read from the store is replaced, not created"
    assert json.loads(value)["p:c"]["v"] == 4 and json.loads(value)["a"] == {"y": "0", "t": 70}


def _monitor() -> tuple[DeploymentMonitor, dict, dict]:
    champ = content("c" * 64, 1, [numeric_baseline("x")])
    chall = content("d" * 64, 2, [numeric_baseline("x")])
    ref = champion_reference(champ, challengers=[chall])
    return DeploymentMonitor(ref, MonitorConfig(window_count=100, lateness_ms=0)), champ, chall


def test_delayed_missing_and_duplicated_actuals_in_the_window_figures():
    monitor, champ, chall = _monitor()
    j = Joiner({})
    monitor.add_events([event("d", i, T0 + i, {"x": 0.0}) for i in range(10)])
    preds = [prediction("d", i, champ, 0.9 if i % 2 else 0.1, T0 + i) for i in range(10)]
    preds += [prediction("d", i, chall, 0.9, T0 + i, served=False) for i in range(10)]
    keys = [f"a{p['association_id'][1:]}" for p in preds]
    # An actual before its prediction (kept and joined later), then the predictions.
    monitor.add_joined(j.actual("a0", {"y": "0", "t": T0 + 500}))
    monitor.add_predictions(preds, keys, j)
    monitor.add_predictions(preds[:3], keys[:3], j)  # a replayed scorer batch: ignored
    for i in range(1, 8):  # a0's label came early; a8, a9 never get one
        label = "1" if i % 2 else "0"
        monitor.add_joined(j.actual(f"a{i}", {"y": label, "t": T0 + i + 1000 * i}))
    assert j.actual("a3", {"y": "0", "t": T0}) is None  # duplicate: first wins
    monitor.add_events([event("d", i, T0 + i, {"x": 0.0}) for i in range(10, 100)])
    (closed,) = monitor.close_due()
    f = closed.figures
    assert f.prediction_count == 10
    assert f.label_coverage == pytest.approx(0.8)
    assert f.metrics["accuracy"] == 1.0 and f.metrics["auc"] == 1.0
    (challenger,) = f.challengers
    assert challenger.model_id == chall["model_id"] and challenger.model_version == 2
    assert challenger.metrics["accuracy"] == pytest.approx(4 / 8)  # always "1"; 4 of 8 are 1
    delays = [500] + [1000 * i for i in range(1, 8)]
    assert f.label_delay_ms_p50 == pytest.approx(float(np.median(delays)))


def test_actuals_added_in_one_call_equal_one_call_per_actual():
    """The service adds a batch's joined actuals with one monitor call; nothing changes."""
    states = []
    for batched in (False, True):
        monitor, champ, chall = _monitor()
        j = Joiner({})
        monitor.add_events([event("d", i, T0 + i, {"x": 0.0}) for i in range(60)])
        preds = [prediction("d", i, champ, (i % 7) / 7, T0 + i) for i in range(60)]
        preds += [prediction("d", i, chall, 0.9, T0 + i, served=False) for i in range(60)]
        monitor.add_predictions(preds, [f"a{p['association_id'][1:]}" for p in preds], j)
        actuals = [(f"a{i}", {"y": str(i % 3 % 2), "t": T0 + 10 * i}) for i in range(50)]
        rows = [j.actual(key, payload) for key, payload in actuals]
        if batched:
            monitor.add_joined([r for rs in rows for r in rs or []])
        else:
            for rs in rows:
                monitor.add_joined(rs or [])
        states.append(monitor.state())
    assert states[0] == states[1]
