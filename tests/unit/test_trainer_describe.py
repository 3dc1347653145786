"""`models describe` without a broker (issue 25): a model that runs in the user's service is
published from its training data alone: signature, classes and baseline from the data, the
prediction baseline from the user's predictions (else the labels), no ONNX, a signed content
with an id of its own; the drift service builds its reference from it."""

from __future__ import annotations

import csv
import hashlib
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from services.cli.__main__ import build_parser
from services.cli.describe_cmd import run as describe_run
from services.common import serde, signing
from services.common.errors import ConfigError
from services.common.model_verifier import ModelVerifier
from services.drift.reference import ModelInfo, reference_for
from services.trainer.baseline import PROBABILITY_EDGES, bin_counts
from services.trainer.dataset import ColumnChoices
from services.trainer.model_content import CONTENT_FIELDS, EXTERNAL, content_id
from services.trainer.model_describe import describe_model, load_described
from services.trainer.publisher import signed_record
from services.trainer.summary import render_summary, summarize
from services.trainer.validation import DataValidationError
from tests.describe_support import CATEGORICAL, credit_table, labels, outside_prediction

pytestmark = pytest.mark.unit

CHOICES = ColumnChoices(categorical=CATEGORICAL)


def _describe(path: Path, prediction: str | None = "pred", version: int = 1, **kw):
    ds, predictions = load_described(str(path), "approved", CHOICES, prediction)
    return describe_model(
        ds, name="fraud-ext", version=version, parent_id=None, predictions=predictions,
        created_at=kw.pop("created_at", 1_700_000_000_000), **kw,
    )  # fmt: skip


def _sign(content, tmp_path: Path):
    key_id = signing.generate_keypair(tmp_path)
    record = signed_record(content, signing.load_private_key(tmp_path / f"{key_id}.key"))
    return record, ModelVerifier(signing.load_public_keys(tmp_path))


def test_a_classifier_with_a_prediction_column_is_described_from_its_data(tmp_path):
    path = credit_table(tmp_path / "train.csv", prediction="class")
    m = _describe(path)
    c = m.content
    assert tuple(c) == CONTENT_FIELDS
    assert (c["onnx"], c["estimator"], c["task"], c["classes"]) == (
        b"",
        EXTERNAL,
        "classification",
        ["0", "1"],
    )
    features = c["signature_in"]["features"]
    assert [f["name"] for f in features][:3] == ["salary", "commission", "age"]
    assert "pred" not in {f["name"] for f in features}  # the predictions are not an input
    kinds = {f["name"]: f["kind"] for f in features}
    assert {n for n, k in kinds.items() if k == "categorical"} == set(CATEGORICAL)
    # The prediction baseline counts the outside model's answers, not the labels.
    y = labels()
    said = [outside_prediction(v, i, "class") for i, v in enumerate(y)]
    prediction = c["baseline"]["prediction"]
    assert prediction["class_counts"] == dict(sorted(Counter(said).items()))
    assert prediction["class_counts"] != dict(sorted(Counter(y).items()))
    assert prediction["bin_edges"] == [] and prediction["bin_counts"] == []  # no scores given
    metrics = c["lineage"]["metrics"]
    assert metrics["accuracy"] == pytest.approx(0.9)  # wrong on every tenth row
    assert "roc_auc" not in metrics and "log_loss" not in metrics  # labels only: no scores
    sketches = {f["name"]: f for f in c["baseline"]["features"]}
    salary = np.array([float(r["salary"]) for r in csv.DictReader(path.open())])
    assert sketches["salary"]["count"] == 400
    assert sketches["salary"]["mean"] == pytest.approx(salary.mean())
    assert sum(sketches["salary"]["bin_counts"]) == 400
    assert sum(sketches["car"]["categories"].values()) == 400
    assert c["baseline"]["importances"] == pytest.approx({n: 1 / 9 for n in kinds})
    assert c["lineage"]["parity"] == {"rows": 0, "label_agreement": 0.0, "max_prob_diff": 0.0}
    assert m.report.rows == 400


def test_a_probability_column_gives_score_bins_and_probability_metrics(tmp_path):
    m = _describe(credit_table(tmp_path / "train.csv", prediction="probability"))
    prediction = m.content["baseline"]["prediction"]
    scores = [float(outside_prediction(v, i, "probability")) for i, v in enumerate(labels())]
    assert prediction["bin_edges"] == PROBABILITY_EDGES
    assert prediction["bin_counts"] == bin_counts(np.array(scores), PROBABILITY_EDGES)
    said = Counter("1" if s > 0.5 else "0" for s in scores)
    assert prediction["class_counts"] == {"0": said["0"], "1": said["1"]}
    metrics = m.content["lineage"]["metrics"]
    assert metrics["accuracy"] == pytest.approx(0.9) and 0.85 < metrics["roc_auc"] < 0.95
    assert "log_loss" in metrics


def test_without_a_prediction_column_the_labels_are_the_prediction_baseline(tmp_path):
    m = _describe(credit_table(tmp_path / "train.csv"), prediction=None)
    c = m.content
    assert c["baseline"]["prediction"]["class_counts"] == dict(sorted(Counter(labels()).items()))
    assert c["lineage"]["metrics"] == {} and c["lineage"]["holdout_fraction"] == 0.0
    space = json.loads(c["lineage"]["search_space"])
    assert space["predictions"] == "label column 'approved'"
    assert json.loads(c["lineage"]["params"]["prediction_column"]) is None


def _regression_csv(path: Path, with_prediction: bool) -> Path:
    rng = np.random.default_rng(0)
    with path.open("w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["x1", "x2", "region", "y"] + (["yhat"] if with_prediction else []))
        for i in range(200):
            x1, x2 = rng.normal(), rng.uniform(0, 10)
            y = 3 * x1 + x2 + rng.normal(0, 0.1)
            extra = [round(3 * x1 + x2, 6)] if with_prediction else []
            out.writerow([x1, x2, "nsew"[i % 4], y, *extra])
    return path


@pytest.mark.parametrize("with_prediction", [True, False])
def test_a_regression_is_described_with_value_bins(tmp_path, with_prediction):
    path = _regression_csv(tmp_path / "r.csv", with_prediction)
    column = "yhat" if with_prediction else None
    ds, predictions = load_described(str(path), "y", ColumnChoices(), column)
    c = describe_model(ds, name="price", version=4, parent_id="p" * 64,
                       predictions=predictions).content  # fmt: skip
    assert (c["task"], c["classes"], c["onnx"], c["version"]) == ("regression", [], b"", 4)
    assert [(f["name"], f["kind"]) for f in c["signature_in"]["features"]] == [
        ("x1", "numeric"),
        ("x2", "numeric"),
        ("region", "categorical"),
    ]
    rows = list(csv.DictReader(path.open()))
    values = np.array([float(r["yhat" if with_prediction else "y"]) for r in rows])
    prediction = c["baseline"]["prediction"]
    assert prediction["class_counts"] == {}
    assert prediction["bin_edges"][0] == pytest.approx(values.min())
    assert prediction["bin_edges"][-1] == pytest.approx(values.max())
    assert sum(prediction["bin_counts"]) == 200
    metrics = c["lineage"]["metrics"]
    if with_prediction:
        assert metrics["rmse"] == pytest.approx(0.1, abs=0.03) and metrics["r2"] > 0.99
    else:
        assert metrics == {}


def test_the_id_names_this_description_and_the_signature_covers_it(tmp_path):
    path = credit_table(tmp_path / "train.csv", prediction="class")
    c = _describe(path).content
    assert c["model_id"] == content_id(c)
    body = serde.canonical_bytes("ModelContent", {**c, "model_id": ""})
    assert c["model_id"] == hashlib.sha256(body).hexdigest()
    assert c["model_id"] != hashlib.sha256(b"").hexdigest()
    assert _describe(path).content["model_id"] == c["model_id"]  # stable for the same input
    others = {
        _describe(path, version=2).content["model_id"],
        _describe(path, created_at=1_700_000_000_001).content["model_id"],
        _describe(path, prediction=None).content["model_id"],
        c["model_id"],
    }
    assert len(others) == 4  # unique per version, time and description
    record, verify = _sign(c, tmp_path / "keys")
    wire = serde.decode(serde.encode("ModelPublished", record), expected="ModelPublished")[1]
    assert verify(wire)["model_id"] == c["model_id"] and wire["content"]["onnx"] == b""
    wire["content"]["baseline"]["importances"]["salary"] = 0.5
    with pytest.raises(Exception, match="signature"):
        verify(wire)


def test_the_lineage_says_it_was_described_from_the_file(tmp_path):
    path = credit_table(tmp_path / "train.csv", prediction="class")
    m = _describe(path)
    lineage = m.content["lineage"]
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    assert json.loads(lineage["params"]["origin"]) == f"described from {sha}"
    assert json.loads(lineage["params"]["prediction_column"]) == "pred"
    space = json.loads(lineage["search_space"])
    assert space == {
        "origin": "described",
        "file": "train.csv",
        "sha256": sha,
        "predictions": "prediction column 'pred'",
        "importances": "uniform",
    }
    assert lineage["dataset"]["content_hash"] == sha and lineage["dataset"]["rows"] == 400
    assert m.origin == "described from train.csv"
    summary = render_summary(summarize(m.content, outcome="published", parent_source="none",
                                       train_seconds=0, total_seconds=1))  # fmt: skip
    assert "parity     none" in summary and "no ONNX" in summary and "accuracy 0.9000" in summary


def _rewrite_pred(path: Path, value_of) -> Path:
    rows = list(csv.DictReader(path.open()))
    with path.open("w", newline="") as f:
        out = csv.DictWriter(f, fieldnames=list(rows[0]))
        out.writeheader()
        for i, row in enumerate(rows):
            out.writerow({**row, "pred": value_of(i, row["pred"])})
    return path


@pytest.mark.parametrize(
    ("value_of", "message"),
    [
        (lambda i, v: "" if i == 7 else v, r"empty on 1 of 400 rows \(first: row 8\)"),
        (lambda i, v: "maybe" if i == 3 else v, r"holds 'maybe', not classes .*probability"),
        (lambda i, v: "1.5" if i == 3 else v, r"holds '1.5'"),
    ],
)
def test_a_prediction_column_that_is_not_the_models_output_is_refused(tmp_path, value_of, message):
    path = _rewrite_pred(credit_table(tmp_path / "t.csv", prediction="class"), value_of)
    with pytest.raises(DataValidationError, match=message):
        _describe(path)


def test_the_data_is_validated_and_the_columns_checked_as_for_an_import(tmp_path):
    path = credit_table(tmp_path / "small.csv", rows=30, prediction="class")
    with pytest.raises(DataValidationError, match="too few rows"):
        _describe(path)
    path = credit_table(tmp_path / "t.csv", prediction="class")
    with pytest.raises(ConfigError, match="no prediction column 'guess'"):
        _describe(path, prediction="guess")
    with pytest.raises(ConfigError, match="prediction column, not a feature or label"):
        load_described(str(path), "pred", CHOICES, "pred")
    with pytest.raises(ConfigError, match="no prediction column"):
        load_described("builtin:credit?rows=100", None, ColumnChoices(), "pred")
    ds, _ = load_described(str(path), "approved", CHOICES, "pred")
    assert "predictions" in ds.left_out["pred"]


def test_the_drift_service_builds_its_reference_from_a_described_model(tmp_path):
    c = _describe(credit_table(tmp_path / "t.csv", prediction="probability")).content
    model = ModelInfo(c["model_id"], c["name"], c["version"], c["task"], tuple(c["classes"]),
                      c["baseline"])  # fmt: skip
    dep = {"name": "fraud", "revision": 1, "champion": {"model_id": c["model_id"]},
           "external": True, "thresholds": [{"metric": "psi", "feature": None, "warning": 0.1,
           "critical": 0.2, "hysteresis": 0.0, "direction": "above"}]}  # fmt: skip
    ref = reference_for(dep, model, 60)
    assert len(ref.features) == 9  # every feature sketch is usable
    assert {p["name"] for p in ref.predictions} == {"prediction_class", "prediction_score"}
    assert len(ref.thresholds) == 9 and ref.positive == "1"


def test_models_describe_is_a_cli_action_with_the_import_options(tmp_path, monkeypatch):
    args = build_parser().parse_args(
        ["models", "describe", "--data", "t.csv", "--label", "y", "--name", "fraud-ext",
         "--prediction-column", "pred", "--categorical", "a,b", "--task", "classification"]
    )  # fmt: skip
    assert args.func is describe_run
    seen = {}

    def fake(settings, job, progress):
        seen["job"] = job
        raise DataValidationError("too few rows")

    monkeypatch.setattr("services.cli.describe_cmd.describe_once", fake)
    assert describe_run(args, {"STREAMOPS_VAR_DIR": str(tmp_path)}) == 1  # refused
    job = seen["job"]
    assert (job.model_name, job.data, job.label, job.prediction_column) == (
        "fraud-ext",
        "t.csv",
        "y",
        "pred",
    )
    assert job.choices == ColumnChoices("classification", ("a", "b"), ())
