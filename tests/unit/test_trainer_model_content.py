"""ModelContent: the exact shape the ModelPublished record carries, built end to end."""

from __future__ import annotations

import hashlib
import json

import onnxruntime as ort
import pytest

from services.common.onnx_inputs import onnx_inputs
from services.trainer.dataset import credit_rows, load_dataset
from services.trainer.model_build import TrainOptions, build_model
from services.trainer.model_content import CONTENT_FIELDS, build_model_content
from services.trainer.onnx_export import ExportError
from services.trainer.validation import DataValidationError

pytestmark = pytest.mark.unit

LINEAGE = {
    "dataset",
    "params",
    "search_space",
    "cv_folds",
    "split_seed",
    "holdout_fraction",
    "metrics",
    "parity",
    "code_version",
}
FEATURE = {
    "name",
    "kind",
    "count",
    "missing_rate",
    "min",
    "max",
    "mean",
    "std",
    "bin_edges",
    "bin_counts",
    "categories",
}
OPTIONS = TrainOptions(estimator="hgb", search="random", trials=1, seed=7, cv_folds=2)


@pytest.fixture(scope="module")
def built():
    ds = load_dataset("builtin:credit?rows=2000&seed=9")
    return ds, build_model(
        ds, name="credit", version=3, parent_id="ab" * 32, options=OPTIONS, created_at=1_700
    )


def test_content_has_exactly_the_contract_fields(built):
    ds, model = built
    c = model.content
    assert tuple(c) == CONTENT_FIELDS
    assert c["model_id"] == hashlib.sha256(c["onnx"]).hexdigest()
    assert (c["name"], c["version"], c["parent_id"], c["created_at"]) == (
        "credit",
        3,
        "ab" * 32,
        1700,
    )
    assert (c["task"], c["estimator"], c["classes"]) == ("classification", "hgb", ["0", "1"])
    features = c["signature_in"]["features"]
    assert [f["name"] for f in features] == [s.name for s in ds.feature_specs]
    assert all(set(f) == {"name", "kind", "categories"} for f in features)
    assert next(f for f in features if f["name"] == "zipcode")["categories"] == [
        str(i) for i in range(9)
    ]
    lineage = c["lineage"]
    assert set(lineage) == LINEAGE
    assert lineage["dataset"] == ds.version.as_dict() and lineage["dataset"]["rows"] == 2000
    assert set(lineage["dataset"]) == {
        "kind",
        "uri",
        "content_hash",
        "rows",
        "columns",
        "stream_slices",
    }
    assert all(isinstance(v, str) for v in lineage["params"].values())
    assert json.loads(lineage["search_space"])["search"] == "random"
    assert (lineage["cv_folds"], lineage["split_seed"], lineage["holdout_fraction"]) == (2, 7, 0.2)
    assert lineage["metrics"]["roc_auc"] > 0.95
    assert lineage["parity"]["rows"] == 400 and lineage["parity"]["label_agreement"] >= 0.999
    baseline = c["baseline"]
    assert set(baseline) == {"features", "prediction", "importances"}
    assert all(set(f) == FEATURE for f in baseline["features"])
    assert set(baseline["prediction"]) == {"bin_edges", "bin_counts", "class_counts"}
    assert sum(baseline["importances"].values()) == pytest.approx(1.0)
    # Plain data all the way down (what serde and signing expect).
    json.dumps({k: v for k, v in c.items() if k != "onnx"})


def test_content_model_serves_a_stream_event(built):
    _, model = built
    session = ort.InferenceSession(model.content["onnx"])
    rows = [x for x, _ in credit_rows(5, seed=123)]
    features = model.content["signature_in"]["features"]
    label, proba = session.run(None, onnx_inputs(rows, features))
    expected = ["1" if (x["age"] < 40 or x["age"] >= 60) else "0" for x in rows]
    assert label.ravel().astype(str).tolist() == expected and proba.shape == (5, 2)


def test_same_model_same_id_and_checks(built):
    _, model = built
    args = {
        k: model.content[k]
        for k in (
            "name",
            "version",
            "parent_id",
            "task",
            "estimator",
            "onnx",
            "classes",
            "created_at",
        )
    }
    common = dict(
        feature_specs=model.result.feature_specs,
        dataset=load_dataset("builtin:credit?rows=60").version,
        params={},
        search_space="{}",
        cv_folds=2,
        split_seed=0,
        holdout_fraction=0.2,
        metrics={},
        parity=model.parity.as_dict(),
        code_version="x",
        baseline=model.content["baseline"],
    )
    again = build_model_content(**args, **common)
    assert again["model_id"] == model.content["model_id"]
    with pytest.raises(ValueError, match="version"):
        build_model_content(**{**args, "version": 0}, **common)
    with pytest.raises(ValueError, match="task"):
        build_model_content(**{**args, "task": "ranking"}, **common)


def test_build_refuses_bad_data_and_bad_parity():
    with pytest.raises(DataValidationError, match="too few rows"):
        build_model(load_dataset("builtin:credit?rows=30"), name="m", version=1, parent_id=None)
    ds = load_dataset("builtin:credit?rows=300")
    strict = TrainOptions(estimator="logreg", max_prob_gap=-1.0)
    with pytest.raises(ExportError, match="ONNX disagrees"):
        build_model(ds, name="m", version=1, parent_id=None, options=strict)
