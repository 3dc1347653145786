"""The join of predictions and actuals, and the accuracy figures computed from it."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.metrics import f1_score, precision_score, recall_score, roc_auc_score

from services.drift.accuracy import ModelAccuracy, auc
from services.drift.join import Joiner
from services.drift.monitor import DeploymentMonitor, MonitorConfig
from services.drift.reference import ReferenceBook
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
    assert j.prediction("k", "m", ["1", None, 10, 0, False, None]) == []
    rows = j.actual("k", "1", 30)
    assert [(r.model_id, r.label, r.delay_ms) for r in rows] == [("m", "1", 20)]
    assert j.actual("k", "0", 40) is None
    assert j.prediction("k", "m", ["0", None, 10, 0, False, None]) is None
    assert j.writes() == [("k", '{"p:m":["1",null,10,0,false,null],"a":["1",30]}', True)]


def test_entries_read_back_from_redis_keep_their_meaning():
    stored = b'{"p:m":["1",0.8,10,3,true,4],"a":["0",70]}'
    j = Joiner({"k": stored})
    assert j.actual("k", "1", 99) is None  # the stored actual came first
    rows = j.prediction("k", "c", ["0", 0.2, 10, 4, False, None])
    assert [(r.model_id, r.version, r.label, r.served) for r in rows] == [("c", 4, "0", False)]
    ((key, value, new),) = j.writes()
    assert (key, new) == ("k", False), "an entry read from the store is replaced, not created"
    assert json.loads(value) == {
        "p:m": ["1", 0.8, 10, 3, True, 4],
        "a": ["0", 70],
        "p:c": ["0", 0.2, 10, 4, False, None],
    }


def test_an_entry_names_its_model_by_16_characters_and_joins_under_the_full_id():
    full = "e4c3cc8846be9e7f81ca2d6f38035a725ee3c54ad2db01fc1d493f28560d363e"
    ids = _ids(content(full, 1, [numeric_baseline("x")]))
    j = Joiner({}, ids)
    assert (
        j.prediction("r15000-19311", full, ["1", 0.9999854564666748, 1700000193110, 1, True, 60])
        == []
    )
    ((_key, value, _new),) = j.writes()
    assert value.startswith('{"p:e4c3cc8846be9e7f":')
    assert len(value) <= 80, value  # the former layout took 143 characters for this entry
    later = Joiner({"r15000-19311": value}, ids)
    assert [(r.model_id, r.score) for r in later.actual("r15000-19311", "1", 1700000193999)] == [
        (full, 0.9999854564666748)
    ]


def test_an_entry_of_the_former_layout_is_read_joined_and_rewritten_compact():
    full = "d" * 64
    old = f'{{"p:{full}":{{"y":"1","q":0.7,"t":10,"v":2,"s":true,"w":5}},"p:m":{{"y":"0","t":12}}}}'
    j = Joiner({"k": old}, _ids(content(full, 2, [numeric_baseline("x")])))
    assert j.prediction("k", full, ["1", 0.7, 10, 2, True, 5]) is None, "still a duplicate"
    rows = j.actual("k", "1", 40)
    assert [(r.model_id, r.version, r.served, r.score, r.window, r.delay_ms) for r in rows] == [
        (full, 2, True, 0.7, 5, 30),
        ("m", 0, False, None, None, 28),
    ]
    ((_key, value, new),) = j.writes()
    assert not new and json.loads(value) == {
        f"p:{full[:16]}": ["1", 0.7, 10, 2, True, 5],
        "p:m": ["0", None, 12, 0, False, None],
        "a": ["1", 40],
    }


def _ids(*contents: dict):
    """A joiner's model ids by their first 16 characters, as the reference book gives them."""
    book = ReferenceBook()
    for c in contents:
        book.apply(model_record(c))
    return book.model_id


def _monitor() -> tuple[DeploymentMonitor, dict, dict]:
    champ = content("c" * 64, 1, [numeric_baseline("x")])
    chall = content("d" * 64, 2, [numeric_baseline("x")])
    ref = champion_reference(champ, challengers=[chall])
    return DeploymentMonitor(ref, MonitorConfig(window_count=100, lateness_ms=0)), champ, chall


def test_delayed_missing_and_duplicated_actuals_in_the_window_figures():
    monitor, champ, chall = _monitor()
    j = Joiner({}, _ids(champ, chall))
    monitor.add_events([event("d", i, T0 + i, {"x": 0.0}) for i in range(10)])
    preds = [prediction("d", i, champ, 0.9 if i % 2 else 0.1, T0 + i) for i in range(10)]
    preds += [prediction("d", i, chall, 0.9, T0 + i, served=False) for i in range(10)]
    keys = [f"a{p['association_id'][1:]}" for p in preds]
    # An actual before its prediction (kept and joined later), then the predictions.
    monitor.add_joined(j.actual("a0", "0", T0 + 500))
    monitor.add_predictions(preds, keys, j)
    monitor.add_predictions(preds[:3], keys[:3], j)  # a replayed scorer batch: ignored
    for i in range(1, 8):  # a0's label came early; a8, a9 never get one
        label = "1" if i % 2 else "0"
        monitor.add_joined(j.actual(f"a{i}", label, T0 + i + 1000 * i))
    assert j.actual("a3", "0", T0) is None  # duplicate: first wins
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
        j = Joiner({}, _ids(champ, chall))
        monitor.add_events([event("d", i, T0 + i, {"x": 0.0}) for i in range(60)])
        preds = [prediction("d", i, champ, (i % 7) / 7, T0 + i) for i in range(60)]
        preds += [prediction("d", i, chall, 0.9, T0 + i, served=False) for i in range(60)]
        monitor.add_predictions(preds, [f"a{p['association_id'][1:]}" for p in preds], j)
        actuals = [(f"a{i}", str(i % 3 % 2), T0 + 10 * i) for i in range(50)]
        rows = [j.actual(key, label, t) for key, label, t in actuals]
        if batched:
            monitor.add_joined([r for rs in rows for r in rs or []])
        else:
            for rs in rows:
                monitor.add_joined(rs or [])
        states.append(monitor.state())
    assert states[0] == states[1]
