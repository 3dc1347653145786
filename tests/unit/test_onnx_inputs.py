"""The ONNX inputs of a batch: plain columns take a one-call path that must encode as the
per-value path does, and refuse what it refuses."""

from __future__ import annotations

import math

import numpy as np
import pytest

from services.common.errors import PoisonMessage, Reason
from services.common.onnx_inputs import (
    MISSING_CATEGORY,
    category_text,
    numeric_value,
    onnx_inputs,
)

pytestmark = pytest.mark.unit

SPECS = [{"name": "x", "kind": "numeric"}, {"name": "c", "kind": "categorical"}]


def per_value(rows: list[dict]) -> tuple[list[float], list[str]]:
    """What the inputs hold, value by value."""
    xs = [float(np.float32(numeric_value(r.get("x"), "x"))) for r in rows]
    cs = [category_text(r.get("c")) or MISSING_CATEGORY for r in rows]
    return xs, cs


def same_floats(a: list[float], b: list[float]) -> bool:
    return all((math.isnan(p) and math.isnan(q)) or p == q for p, q in zip(a, b, strict=True))


@pytest.mark.parametrize(
    ("xs", "cs"),
    [
        ([1.5, 2.0, -3.25, 1e30], ["a", "b", "a", "zz"]),  # plain: the one-call path
        ([1, 2.5, 7, 0], ["1", "b", "c", "d"]),  # ints among floats are plain too
        ([1.0, None, float("nan"), 4.0], ["a", None, "", "b"]),  # missing values
        ([np.float64(2.5), "3.5", 1.0, 2], [2, 2.0, np.int64(3), "x"]),  # other types
    ],
)
def test_a_column_encodes_as_its_values_do_one_by_one(xs, cs) -> None:
    rows = [{"x": x, "c": c} for x, c in zip(xs, cs, strict=True)]
    inputs = onnx_inputs(rows, SPECS)
    want_x, want_c = per_value(rows)
    assert inputs["x"].dtype == np.float32 and inputs["x"].shape == (len(rows), 1)
    assert same_floats(inputs["x"].ravel().tolist(), want_x)
    assert inputs["c"].dtype == object and inputs["c"].ravel().tolist() == want_c


def test_a_boolean_among_numbers_is_refused() -> None:
    with pytest.raises(PoisonMessage) as caught:
        onnx_inputs([{"x": 1.0, "c": "a"}, {"x": True, "c": "a"}], SPECS)
    assert caught.value.reason == Reason.WRONG_TYPE


def test_an_empty_category_among_plain_ones_is_missing() -> None:
    inputs = onnx_inputs([{"x": 1.0, "c": "a"}, {"x": 2.0, "c": ""}], SPECS)
    assert inputs["c"].ravel().tolist() == ["a", MISSING_CATEGORY]


@pytest.mark.parametrize("value", [1e308, -3.5e38, 10**39, -(10**400)])
def test_a_number_beyond_float32_is_refused_not_served_as_infinity(value) -> None:
    with pytest.raises(PoisonMessage) as caught:
        numeric_value(value, "loan")
    assert caught.value.reason is Reason.OUT_OF_RANGE
    assert "loan" in caught.value.detail


@pytest.mark.parametrize("value", [3.4e38, -3.4e38, 5e-324, 0.0, 2**24])
def test_numbers_within_float32_pass_unchanged(value) -> None:
    assert numeric_value(value, "loan") == float(value)
