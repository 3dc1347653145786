"""The scorer's check of an event's features against the model signature."""

from __future__ import annotations

import pytest

from services.common.errors import PoisonMessage, Reason
from services.scorer.scoring import check_features

pytestmark = pytest.mark.unit

SPECS = [{"name": "x", "kind": "numeric"}, {"name": "c", "kind": "categorical"}]


@pytest.mark.parametrize("x", [1.5, float("nan"), 3, None, "2.5"])
def test_numbers_ints_missing_and_numeric_text_pass(x) -> None:
    check_features({"x": x, "c": "a"}, SPECS)


@pytest.mark.parametrize("x", [True, "abc", [1.0]])
def test_other_values_of_a_numeric_feature_are_the_wrong_type(x) -> None:
    with pytest.raises(PoisonMessage) as caught:
        check_features({"x": x, "c": "a"}, SPECS)
    assert caught.value.reason == Reason.WRONG_TYPE


def test_an_absent_feature_is_a_schema_mismatch() -> None:
    with pytest.raises(PoisonMessage) as caught:
        check_features({"x": 1.0}, SPECS)
    assert caught.value.reason == Reason.SCHEMA_MISMATCH
