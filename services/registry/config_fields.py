"""The checks every configuration field goes through: a mapping of known keys, a number in a
range, a whole number, one of a few words. Each failure names the field's path.

>>> try:
...     integer(0, "window_seconds", 1, 60)
... except InvalidField as exc:
...     print(exc.field, "|", exc)
window_seconds | window_seconds: 0 is outside 1..60
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any


class InvalidField(ValueError):
    """One field of a deployment's configuration is invalid; `field` is its path."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


def keys(value: Any, where: str, allowed: tuple[str, ...]) -> Mapping[str, Any]:
    """`value` as a mapping whose keys are all in `allowed`."""
    if not isinstance(value, Mapping):
        raise InvalidField(where, f"must be a mapping of {', '.join(allowed)}")
    unknown = sorted(set(value) - set(allowed))
    if unknown:
        raise InvalidField(f"{where}.{unknown[0]}", f"unknown field; allowed: {', '.join(allowed)}")
    return value


def number(value: Any, where: str, *, low: float | None = None, high: float | None = None) -> float:
    """`value` as a finite float inside [low, high] (a bool is not a number)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidField(where, f"must be a number, not {value!r}"[:200])
    if not math.isfinite(value):
        raise InvalidField(where, f"must be finite, not {value}")
    if (low is not None and value < low) or (high is not None and value > high):
        span = f"{low if low is not None else '-inf'}..{high if high is not None else 'inf'}"
        raise InvalidField(where, f"{value} is outside {span}")
    return float(value)


def integer(value: Any, where: str, low: int, high: int) -> int:
    """`value` as a whole number inside [low, high]."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidField(where, f"must be a whole number, not {value!r}"[:200])
    if not low <= value <= high:
        raise InvalidField(where, f"{value} is outside {low}..{high}")
    return value


def choice(value: Any, where: str, allowed: tuple[str, ...]) -> str:
    """`value` when it is one of `allowed`."""
    if value not in allowed:
        raise InvalidField(where, f"must be one of {', '.join(allowed)}, not {value!r}"[:200])
    return str(value)
