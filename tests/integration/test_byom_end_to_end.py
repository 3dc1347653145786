"""Users' own tables end to end on the real broker and Redis: three data sets that ship inside
scikit-learn (no download) are trained on 70% with `streamops train`, published, deployed and
served by a scorer process; the other 30% are streamed through `events` with their actuals.
Every event is answered, and the accuracy (or RMSE) the drift process reports for the window is
the offline figure of the published ONNX model on the same rows: no training/serving skew.

The tables look like real ones: wine has an `id` column (left out of the features on its own)
and its original column names, slashes included (`od280/od315_of_diluted_wines`); breast cancer
has dashed names (`mean-radius`); diabetes is a regression asked for with `--task regression`.
"""

from __future__ import annotations

import dataclasses
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes, load_wine
from sklearn.metrics import accuracy_score, mean_squared_error

from services.cli.__main__ import main
from services.common import serde, signing
from services.common.model_verifier import ModelVerifier
from services.trainer.dataset import FeatureSpec
from services.trainer.onnx_predictor import OnnxPredictor
from tests.drift_service import start_drift, stored_offsets
from tests.kafka_support import end_offsets, make_topics, produce, read_all, wait_caught_up
from tests.model_factory import deployment
from tests.scorer_support import world

pytestmark = pytest.mark.integration

SEED = 7
TRAIN_FRACTION = 0.7
WINDOW_S = 3600  # one window holds every streamed row of a deployment
LATENESS_S = 10  # the drift service's allowed lateness (passed explicitly)
LABEL_DELAY_MS = 1500


@dataclasses.dataclass(frozen=True)
class Case:
    """One user's table: the training CSV and the rows streamed afterwards."""

    name: str
    csv: Path
    task: str
    extra: tuple[str, ...]  # further `streamops train` flags
    stream: pd.DataFrame  # feature columns only, CSV names
    labels: list[Any]  # "0".."2" for classes, floats for regression


def _split(frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A seeded shuffle, then the first 70% to train on and the last 30% to stream."""
    order = np.random.default_rng(SEED).permutation(len(frame))
    shuffled = frame.iloc[order].reset_index(drop=True)
    cut = int(len(shuffled) * TRAIN_FRACTION)
    return shuffled.iloc[:cut], shuffled.iloc[cut:].reset_index(drop=True)


def _cases(folder: Path) -> list[Case]:
    folder.mkdir()
    cases = []

    wine = load_wine(as_frame=True)
    frame = wine.data.copy()  # original names: "od280/od315_of_diluted_wines", ...
    frame.insert(0, "id", np.arange(10_001, 10_001 + len(frame)))
    frame["label"] = wine.target
    train, stream = _split(frame)
    train.to_csv(folder / "wine.csv", index=False)
    features = list(wine.data.columns)
    cases.append(Case("wine", folder / "wine.csv", "classification", (), stream[features],
                      [str(v) for v in stream["label"]]))  # fmt: skip

    cancer = load_breast_cancer(as_frame=True)
    frame = cancer.data.rename(columns=lambda c: c.replace(" ", "-"))  # "mean-radius", ...
    frame["label"] = cancer.target
    train, stream = _split(frame)
    train.to_csv(folder / "breast-cancer.csv", index=False)
    features = [c for c in frame.columns if c != "label"]
    cases.append(Case("cancer", folder / "breast-cancer.csv", "classification", (),
                      stream[features], [str(v) for v in stream["label"]]))  # fmt: skip

    diabetes = load_diabetes(as_frame=True)
    frame = diabetes.data.copy()
    frame["label"] = diabetes.target
    train, stream = _split(frame)
    train.to_csv(folder / "diabetes.csv", index=False)
    features = list(diabetes.data.columns)
    cases.append(Case("diabetes", folder / "diabetes.csv", "regression",
                      ("--task", "regression"), stream[features],
                      [float(v) for v in stream["label"]]))  # fmt: skip
    return cases


def _window_start() -> int:
    """The start of a window wholly in the past (events must not be timed in the future)."""
    size = WINDOW_S * 1000
    now = int(time.time() * 1000)
    return now - now % size - 2 * size


def _feature_event(case: Case, i: int, t: int, row: dict[str, Any]) -> tuple[str, bytes]:
    aid = f"{case.name}-{i}"
    event = {"association_id": aid, "deployment": case.name, "event_time": t,
             "features": {c: float(v) for c, v in row.items()}, "attributes": {}}  # fmt: skip
    return aid, serde.encode("FeatureEvent", event)


def _stream(bootstrap: str, namer, case: Case, start: int) -> list[str]:
    """Produce the case's rows as events and their actuals; returns the association ids."""
    events, actuals = [], []
    for i, row in enumerate(case.stream.to_dict(orient="records")):
        aid, value = _feature_event(case, i, start + i, row)
        events.append((aid, value))
        actual = {"association_id": aid, "deployment": case.name, "label": case.labels[i],
                  "actual_time": start + i + LABEL_DELAY_MS}  # fmt: skip
        actuals.append((aid, serde.encode("Actual", actual)))
    produce(bootstrap, namer.events, events)
    produce(bootstrap, namer.actuals, actuals)
    return [aid for aid, _ in events]


def _wait_drift_at(
    redis_client: Any, namespace: str, targets: dict[tuple[str, int], int], proc, timeout_s=90.0
) -> None:
    """Wait until the drift process stored offsets reaching every (topic, partition) target."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        done = stored_offsets(redis_client, namespace)
        if all(done.get(tp, 0) >= off for tp, off in targets.items()):
            return
        assert proc.alive(), f"drift exited:\n{proc.log_tail()}"
        time.sleep(0.1)
    raise AssertionError(f"drift did not reach {targets}: at {done}\n{proc.log_tail()}")


def _reports(bootstrap: str, topic: str, names: set[str], proc, timeout_s=60.0) -> list[dict]:
    """The DriftReport records once every deployment in ``names`` has one."""
    deadline = time.monotonic() + timeout_s
    while True:
        rows = [serde.decode(v, expected="DriftReport")[1]
                for _p, _o, _k, v in read_all(bootstrap, topic, idle_s=0.3)]  # fmt: skip
        if names <= {r["deployment"] for r in rows}:
            return rows
        assert time.monotonic() < deadline, f"reports for {names}: {rows}\n{proc.log_tail()}"
        assert proc.alive(), f"drift exited:\n{proc.log_tail()}"
        time.sleep(0.2)


def _offline(content: dict, case: Case) -> tuple[np.ndarray, float]:
    """The published ONNX model's predictions on the streamed rows, and its accuracy or RMSE."""
    specs = [
        FeatureSpec(f["name"], f["kind"], tuple(f["categories"]))
        for f in content["signature_in"]["features"]
    ]
    matrix = case.stream[[s.name for s in specs]].to_numpy(dtype=float).astype(object)
    model = OnnxPredictor(content["onnx"], specs, content["task"], content["classes"])
    predicted = model.predict(matrix)
    if case.task == "classification":
        return predicted, float(accuracy_score(case.labels, predicted))
    return predicted, math.sqrt(mean_squared_error(case.labels, predicted))


def test_users_tables_train_serve_and_monitor_without_skew(
    kafka_bootstrap, redis_client, prefix, drift_group, tmp_path, capsys
):
    started = time.monotonic()
    w = world(kafka_bootstrap, prefix, tmp_path)
    namer = make_topics(kafka_bootstrap, prefix, ["actuals", "drift", "breaches"])
    cases = _cases(tmp_path / "data")

    # 1. Train and publish each table with the CLI, as a user would.
    for case in cases:
        args = ["train", "--dataset", str(case.csv), "--model-name", case.name,
                "--estimator", "logreg", "--prefix", prefix, "--keys-dir", str(w.keys_dir),
                *case.extra]  # fmt: skip
        assert main(args) == 0, capsys.readouterr().err
        assert capsys.readouterr().out.startswith(f"published {case.name} v1")

    verify = ModelVerifier(signing.load_public_keys(w.keys_dir))
    contents = {
        c["name"]: c
        for c in (
            verify(serde.decode(v, expected="ModelPublished")[1])
            for _p, _o, _k, v in read_all(kafka_bootstrap, w.namer.models, idle_s=0.5)
        )
    }
    assert sorted(contents) == sorted(c.name for c in cases)
    inputs = {
        name: [f["name"] for f in c["signature_in"]["features"]] for name, c in contents.items()
    }
    # The id column is left out on its own; slashed and dashed names are inputs as they are.
    assert "id" not in inputs["wine"] and "od280/od315_of_diluted_wines" in inputs["wine"]
    assert inputs["wine"] == list(cases[0].stream.columns)
    assert "mean-radius" in inputs["cancer"] and "worst-concave-points" in inputs["cancer"]
    assert inputs["cancer"] == list(cases[1].stream.columns)
    assert [contents[c.name]["task"] for c in cases] == [c.task for c in cases]
    assert contents["wine"]["classes"] == ["0", "1", "2"]

    # 2. Deploy each with one window wide enough for all its streamed rows, then stream.
    start = _window_start()
    for name, content in contents.items():
        w.deploy({**deployment(content, name=name), "window_seconds": WINDOW_S})
    ids = {case.name: _stream(kafka_bootstrap, namer, case, start) for case in cases}

    # 3. A scorer and a drift process on the same prefix.
    group = f"{prefix}scorer"
    scorer = w.scorer(group=group).start()
    drift = start_drift(kafka_bootstrap, prefix, drift_group, tmp_path / "drift.log",
                        allowed_lateness_s=LATENESS_S, **w.key_flags())  # fmt: skip
    namespace = f"streamops:drift:{drift_group}"
    try:
        wait_caught_up(kafka_bootstrap, group, w.namer.events, timeout_s=120)
        messages = read_all(kafka_bootstrap, w.namer.predictions, idle_s=0.5)
        rows = [serde.decode(v, expected="Prediction")[1] for _p, _o, _k, v in messages]

        # Drift has seen every event, actual and prediction (the predictions topic may hold
        # transaction markers past its last record: wait for the record, not the watermark).
        targets = {
            (namer.events, p): e for p, e in end_offsets(kafka_bootstrap, namer.events).items()
        }
        targets |= {
            (namer.actuals, p): e for p, e in end_offsets(kafka_bootstrap, namer.actuals).items()
        }
        for p, o, _k, _v in messages:
            key = (w.namer.predictions, p)
            targets[key] = max(targets.get(key, 0), o + 1)
        _wait_drift_at(redis_client, namespace, targets, drift)

        # 4. One later event per deployment moves the watermark past the window's end: the
        # window closes with every row joined (the closing event's own window stays open).
        closing = start + WINDOW_S * 1000 + LATENESS_S * 1000
        closers = [_feature_event(c, 10**6, closing, c.stream.iloc[0].to_dict()) for c in cases]
        produce(kafka_bootstrap, namer.events, closers)
        reports = _reports(kafka_bootstrap, namer.drift, set(contents), drift)
        code, _ = drift.terminate()
        assert code == 0, drift.log_tail()
    finally:
        scorer_code = scorer.terminate()[0] if scorer.alive() else None
        if drift.alive():
            drift.kill9()
    assert scorer_code == 0, scorer.log_tail()

    for case in cases:
        content = contents[case.name]
        served = {r["association_id"]: r for r in rows if r["deployment"] == case.name}
        assert sorted(served) == sorted(ids[case.name]), f"{case.name}: not every event answered"
        assert all(
            r["role"] == "champion" and r["served"] and r["model_id"] == content["model_id"]
            for r in served.values()
        )
        expected, offline = _offline(content, case)
        got = [served[aid]["prediction"] for aid in ids[case.name]]
        if case.task == "classification":
            assert got == list(expected), f"{case.name}: served differs from offline"
        else:
            np.testing.assert_allclose(got, expected, rtol=1e-6, err_msg=case.name)

        (report,) = [r for r in reports if r["deployment"] == case.name]
        n = len(case.labels)
        assert report["model_id"] == content["model_id"]
        assert report["window_start"] == start
        assert report["window_end"] == start + WINDOW_S * 1000
        assert (report["event_count"], report["prediction_count"]) == (n, n)
        assert report["label_coverage"] == pytest.approx(1.0)
        assert report["label_delay_ms_p50"] == pytest.approx(LABEL_DELAY_MS)
        assert report["schema_violations"] == 0 and report["late_events"] == 0
        metrics = report["metrics"]
        if case.task == "classification":
            assert abs(metrics["accuracy"] - offline) <= 0.005, (case.name, metrics, offline)
            assert offline > 0.9, (case.name, offline)  # a real model, not a constant
        else:
            assert abs(metrics["rmse"] - offline) <= 0.01 * offline, (metrics, offline)
            assert offline < float(np.std(case.labels)), offline  # better than the mean
    # No fault was injected: no batch may have needed a recovery.
    assert "recovering" not in (tmp_path / "drift.log").read_text(), drift.log_tail()
    assert time.monotonic() - started < 180
