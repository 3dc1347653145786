"""A hyper-parameter search space from a YAML file, checked against the estimator before training.

Each key is a parameter of the estimator; its value is a list (tried in a grid, or sampled from by
a random search), or for a random search ``{loguniform: [low, high]}`` or ``{randint: [low,
high]}``.

>>> parse({"C": [0.1, 1.0], "max_iter": {"randint": [100, 500]}}, {"C", "max_iter"}, "random")
{'C': [0.1, 1.0], 'max_iter': ('randint', 100, 500)}
"""

from __future__ import annotations

from collections.abc import Mapping, Set
from pathlib import Path
from typing import Any

import yaml

from services.common.errors import ConfigError

DISTRIBUTIONS = ("loguniform", "randint")


def _value(name: str, spec: Any, search: str) -> Any:
    if isinstance(spec, list) and spec:
        return spec
    if isinstance(spec, dict) and len(spec) == 1:
        ((kind, bounds),) = spec.items()
        if kind not in DISTRIBUTIONS:
            raise ConfigError(
                f"{name}: unknown distribution {kind!r} (use {', '.join(DISTRIBUTIONS)})"
            )
        if search != "random":
            raise ConfigError(f"{name}: a distribution needs --search random; a grid takes a list")
        ok = isinstance(bounds, list) and len(bounds) == 2
        if not ok or not all(
            isinstance(b, int | float) and not isinstance(b, bool) for b in bounds
        ):
            raise ConfigError(f"{name}: {kind} takes [low, high], got {bounds!r}")
        low, high = bounds
        if not low < high or (kind == "loguniform" and low <= 0):
            raise ConfigError(f"{name}: need low < high (and low > 0 for loguniform), got {bounds}")
        return (kind, low, high)
    raise ConfigError(
        f"{name}: give a non-empty list of values or {{loguniform|randint: [low, high]}}"
    )


def parse(raw: Any, known: Set[str], search: str) -> dict[str, Any]:
    """The space in ``train``'s form; ConfigError naming the first problem."""
    if not isinstance(raw, Mapping) or not raw:
        raise ConfigError("a search space is a mapping of parameter names to values")
    unknown = sorted(str(k) for k in raw if k not in known)
    if unknown:
        raise ConfigError(
            f"not parameters of the estimator: {', '.join(unknown)} "
            f"(it has: {', '.join(sorted(known))})"
        )
    return {str(k): _value(str(k), v, search) for k, v in raw.items()}


def read_search_space(path: Path) -> dict[str, Any]:
    """A YAML search space file as a mapping (checked by ``parse`` once the task is known)."""
    try:
        raw = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise ConfigError(f"cannot read search space {str(path)!r}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(raw, dict) or not raw:
        raise ConfigError(f"{path}: a search space is a mapping of parameter names to values")
    return raw
