"""Data validation refuses unusable data with a message naming the problem."""

from __future__ import annotations

import pytest

from services.trainer.dataset import from_records, load_dataset
from services.trainer.validation import DataValidationError, validate_dataset

pytestmark = pytest.mark.unit


def dataset(n=200, labels=None, **columns):
    """n rows with a numeric x (unless overridden) plus the given columns."""
    base = {"x": [float(i) for i in range(n)], **columns}
    records = [{k: v[i] for k, v in base.items()} for i in range(n)]
    labels = labels if labels is not None else ["a" if i % 2 else "b" for i in range(n)]
    return from_records(records, labels, label_name="y", kind="stream", uri="test")


def refused(ds, *words):
    with pytest.raises(DataValidationError) as info:
        validate_dataset(ds)
    for word in words:
        assert word in str(info.value)


def test_valid_data_reports_missing_rates_and_balance():
    ds = load_dataset("builtin:credit?rows=300")
    report = validate_dataset(ds)
    assert report.rows == 300 and set(report.missing_rates) == {s.name for s in ds.feature_specs}
    assert all(r == 0.0 for r in report.missing_rates.values())
    assert sum(report.class_counts.values()) == 300
    assert sum(report.class_balance.values()) == pytest.approx(1.0)
    mixed = dataset(z=[None if i % 4 == 0 else "k" for i in range(200)])
    assert validate_dataset(mixed).missing_rates["z"] == pytest.approx(0.25)


def test_label_missing():
    ds = from_records([{"x": 1.0}] * 100, None, label_name=None, kind="stream", uri="t")
    refused(ds, "label missing", "--label")


def test_missing_label_values():
    labels = ["a", "b"] * 99 + [None, None]
    refused(dataset(labels=labels), "missing on 2 of 200 rows")


def test_too_few_rows():
    refused(dataset(n=20), "too few rows", "20")


def test_feature_mostly_missing():
    refused(dataset(z=[None if i % 3 else 1.0 for i in range(200)]), "'z'", "66% missing")


def test_rare_class():
    labels = ["a"] * 197 + ["b"] * 3
    refused(dataset(labels=labels), "class 'b'", "only 3 rows")
    labels = ["a"] * 1000 + ["b"] * 8  # 8 rows but under 1%
    refused(dataset(n=1008, labels=labels), "class 'b'", "0.79%")


def test_single_class():
    refused(dataset(labels=["a"] * 200), "single class", "'a'")


def test_garbage_in_numeric_column():
    values: list = [float(i) for i in range(200)]
    values[17] = "N/A?"
    refused(dataset(z=values), "numeric column 'z'", "'N/A?'")


def test_too_many_string_classes():
    refused(dataset(n=2500, labels=[f"c{i % 25}" for i in range(2500)]), "25 distinct")
