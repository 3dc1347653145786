"""ONNX export: one input per feature and parity with scikit-learn, missing values included."""

from __future__ import annotations

import numpy as np
import onnx
import pytest

from services.trainer.dataset import credit_rows, from_records
from services.trainer.onnx_export import check_parity, to_onnx
from services.trainer.training import train

pytestmark = pytest.mark.unit

TINY = {"hgb": {"max_leaf_nodes": [15]}, "rf": {"max_depth": [10]}, "logreg": {"C": [1.0]}}


@pytest.fixture(scope="module")
def holey():
    """Agrawal function 8 (non-trivial for every estimator) with ~8% missing cells."""
    rng = np.random.default_rng(4)
    records, labels = [], []
    for x, y in credit_rows(2500, seed=21, function=8):
        for name in ("salary", "loan", "car", "elevel"):
            if rng.random() < 0.08:
                x[name] = None
        records.append(x)
        labels.append(y)
    return from_records(
        records,
        labels,
        label_name="approved",
        kind="stream",
        uri="test",
        categorical=["elevel", "car", "zipcode"],
    )


@pytest.mark.parametrize("estimator", ["logreg", "hgb", "rf"])
def test_parity_with_missing_values(holey, estimator):
    result = train(holey, estimator, space=TINY[estimator])
    onnx_bytes = to_onnx(result.pipeline, result.feature_specs)
    parity = check_parity(result.pipeline, onnx_bytes, result.x_holdout, result.feature_specs)
    assert parity.rows == len(result.x_holdout) == 500
    assert parity.label_agreement >= 0.999
    assert parity.max_prob_diff <= 1e-4, parity
    assert parity.ok()


def test_graph_has_one_typed_input_per_feature_and_probabilities(holey):
    result = train(holey, "hgb", space=TINY["hgb"])
    model = onnx.load_from_string(to_onnx(result.pipeline, result.feature_specs))
    inputs = {i.name: i.type.tensor_type for i in model.graph.input}
    assert list(inputs) == [s.name for s in result.feature_specs]
    for spec in result.feature_specs:
        t = inputs[spec.name]
        want = onnx.TensorProto.FLOAT if spec.kind == "numeric" else onnx.TensorProto.STRING
        assert t.elem_type == want and len(t.shape.dim) == 2 and t.shape.dim[1].dim_value == 1
    outputs = [o.name for o in model.graph.output]
    assert outputs == ["label", "probabilities"]
    assert {op.domain for op in model.opset_import} <= {"", "ai.onnx.ml"}


def test_unseen_category_and_all_missing_row_still_score(holey):
    import onnxruntime as ort

    from services.common.onnx_inputs import onnx_inputs

    result = train(holey, "logreg", space=TINY["logreg"])
    session = ort.InferenceSession(to_onnx(result.pipeline, result.feature_specs))
    rows = [{"car": "999", "salary": 50_000.0}, {}]
    label, proba = session.run(None, onnx_inputs(rows, result.feature_specs))
    assert proba.shape == (2, 2) and np.allclose(proba.sum(axis=1), 1.0, atol=1e-5)
    assert set(label.ravel().astype(str)) <= {"0", "1"}


def test_regression_parity():
    rng = np.random.default_rng(1)
    records = [{"a": float(v), "b": float(w)} for v, w in rng.normal(size=(300, 2))]
    labels = [3 * r["a"] - r["b"] for r in records]
    ds = from_records(records, labels, label_name="y", kind="stream", uri="t")
    result = train(ds, "hgb", space={"max_leaf_nodes": [15]})
    parity = check_parity(
        result.pipeline,
        to_onnx(result.pipeline, ds.feature_specs),
        result.x_holdout,
        ds.feature_specs,
    )
    assert parity.label_agreement >= 0.999 and parity.max_prob_diff < 1e-3
