"""The examples in the drift service modules' docstrings stay true."""

from __future__ import annotations

import doctest
import importlib

import pytest

pytestmark = pytest.mark.unit

MODULES = [
    "services.drift.windows",
    "services.drift.join",
    "services.drift.accuracy",
    "services.drift.coverage",
    "services.drift.idle",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name))
    assert result.attempted > 0
    assert result.failed == 0
