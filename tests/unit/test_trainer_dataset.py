"""Data sets: deterministic builtin:credit, CSV with missing values, ONNX input encoding."""

from __future__ import annotations

import hashlib
import math

import numpy as np
import pytest

from services.common.errors import ConfigError, PoisonMessage, Reason
from services.common.onnx_inputs import onnx_inputs
from services.trainer.dataset import ColumnChoices, credit_rows, load_dataset

pytestmark = pytest.mark.unit

CSV = """\
age,city,income,label
34,paris,1200.5,yes
,lyon,,no
51,,3000,yes
28,paris,2500,no
"""


def test_builtin_credit_is_deterministic_and_versioned():
    a = load_dataset("builtin:credit?rows=500&seed=7")
    b = load_dataset("builtin:credit?seed=7&rows=500")
    c = load_dataset("builtin:credit?rows=500&seed=8")
    assert a.version.content_hash == b.version.content_hash
    assert a.version.content_hash != c.version.content_hash
    assert a.version.uri == b.version.uri == "builtin:credit?function=0&rows=500&seed=7"
    assert (a.rows, a.version.rows, a.task, a.classes) == (500, 500, "classification", ["0", "1"])
    kinds = {s.name: s.kind for s in a.feature_specs}
    assert {n for n, k in kinds.items() if k == "categorical"} == {"elevel", "car", "zipcode"}
    assert len(kinds) == 9 and a.columns["salary"].dtype == float
    assert dict(a.version.columns)["approved"] == "string"
    assert np.array_equal(a.matrix(), b.matrix()) and np.array_equal(a.target(), b.target())


def test_builtin_labels_follow_classification_function_0():
    ds = load_dataset("builtin:credit?rows=400&seed=1")
    age = ds.columns["age"]
    expected = np.where((age < 40) | (age >= 60), "1", "0")
    assert np.array_equal(ds.target(), expected)


def test_credit_rows_switch_function_keeps_inputs_changes_labels():
    before = list(credit_rows(300, seed=5, function=0, start=100))
    after = list(credit_rows(300, seed=5, function=2, start=100))
    assert [x for x, _ in before] == [x for x, _ in after]
    assert sum(a != b for (_, a), (_, b) in zip(before, after, strict=True)) > 30
    # ``start`` continues the same stream.
    whole = list(credit_rows(400, seed=5))
    assert whole[100:] == before
    x, y = before[0]
    assert isinstance(x["elevel"], str) and isinstance(x["salary"], float) and y in ("0", "1")


def test_csv_with_missing_values(tmp_path):
    path = tmp_path / "people.csv"
    path.write_text(CSV)
    ds = load_dataset(str(path))
    assert ds.label_name == "label" and ds.rows == 4 and ds.version.kind == "file"
    assert ds.classes == ["no", "yes"]
    assert [s.kind for s in ds.feature_specs] == ["numeric", "categorical", "numeric"]
    assert math.isnan(ds.columns["age"][1]) and math.isnan(ds.columns["income"][1])
    assert ds.columns["city"][2] is None
    assert ds.feature_specs[1].categories == ("lyon", "paris")
    assert ds.version.content_hash == hashlib.sha256(CSV.encode()).hexdigest()
    matrix = ds.matrix()
    assert matrix.shape == (4, 3) and matrix[2, 1] == "missing"


def test_csv_label_choice_and_categorical_override(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text(CSV)
    ds = load_dataset(str(path), label="income", choices=ColumnChoices(categorical=("age",)))
    assert ds.task == "regression" and ds.label_name == "income"
    assert ds.labels[1] is None and ds.target().dtype == float
    assert {s.name: s.kind for s in ds.feature_specs}["age"] == "categorical"


def test_csv_garbage_in_numeric_column_is_recorded(tmp_path):
    path = tmp_path / "g.csv"
    path.write_text("x,y\n1,a\n2,b\noops,a\n4,b\n")
    ds = load_dataset(str(path), label="y")
    assert ds.feature_specs[0].kind == "numeric"
    assert ds.unparseable == {"x": ("oops",)}


def test_unsupported_sources_are_clear_errors(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        load_dataset(str(tmp_path / "absent.csv"))
    with pytest.raises(ConfigError, match="unknown parameter"):
        load_dataset("builtin:credit?rowz=3")
    with pytest.raises(ConfigError, match="unknown built-in"):
        load_dataset("builtin:iris")
    (tmp_path / "ragged.csv").write_text("a,b\n1,2\n3\n")
    with pytest.raises(ConfigError, match="ragged.csv:3"):
        load_dataset(str(tmp_path / "ragged.csv"))


def test_onnx_inputs_from_rows_columns_and_matrix():
    specs = [{"name": "n", "kind": "numeric"}, {"name": "c", "kind": "categorical"}]
    rows = [{"n": 1, "c": 2.0}, {"n": None, "c": None}, {"c": "x"}, {"n": "3.5", "c": ""}]
    from_rows = onnx_inputs(rows, specs)
    assert from_rows["n"].dtype == np.float32 and from_rows["n"].shape == (4, 1)
    assert np.isnan(from_rows["n"][1, 0]) and np.isnan(from_rows["n"][2, 0])
    assert from_rows["n"][3, 0] == pytest.approx(3.5)
    assert from_rows["c"].ravel().tolist() == ["2", "missing", "x", "missing"]
    columns = onnx_inputs({"n": [1.0, float("nan")], "c": ["a", None]}, specs)
    matrix = onnx_inputs(np.array([[1.0, "a"], [np.nan, None]], dtype=object), specs)
    assert np.array_equal(columns["n"], matrix["n"], equal_nan=True)
    assert columns["c"].tolist() == matrix["c"].tolist()
    assert np.isnan(matrix["n"][1, 0]) and matrix["c"][1, 0] == "missing"
    with pytest.raises(PoisonMessage) as info:
        onnx_inputs([{"n": "abc", "c": "a"}], specs)
    assert info.value.reason is Reason.WRONG_TYPE and "'n'" in str(info.value)
