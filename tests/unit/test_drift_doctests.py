"""The examples in the drift domain modules' docstrings stay true."""

from __future__ import annotations

import doctest
import importlib

import pytest

pytestmark = pytest.mark.unit

MODULES = [
    "services.drift.statistics.binning",
    "services.drift.statistics.psi",
    "services.drift.statistics.merging",
    "services.drift.statistics.ks",
    "services.drift.statistics.jensen_shannon",
    "services.drift.statistics.chi_square",
    "services.drift.quality",
    "services.drift.detectors",
    "services.drift.hysteresis",
    "services.drift.weighting",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name))
    assert result.attempted > 0
    assert result.failed == 0
