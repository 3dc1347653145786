"""Reading a YAML config through its composed node tree, so every error names file and line.

`yaml.compose` keeps a start mark on every node; `MarkedDoc` turns bad shapes, unknown or duplicate
keys and wrong types into `ConfigError("<file>:<line>: <what>")`. Also parses durations.

>>> parse_duration("1h30m")
5400.0
"""

from __future__ import annotations

import re
from typing import Any

import yaml

from services.common.errors import ConfigError

_DURATION = re.compile(r"(?:(\d+(?:\.\d+)?)(ms|s|m|h|d))")
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86_400.0}


def parse_duration(value: object) -> float:
    """Seconds from "30s", "5m", "1h30m", "250ms" or a plain number; ValueError otherwise."""
    if isinstance(value, bool):
        raise ValueError("a duration is a number of seconds or a string like 30s, 5m, 4h")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and value and _DURATION.sub("", value) == "":
        seconds = sum(float(n) * _UNIT_S[u] for n, u in _DURATION.findall(value))
    else:
        raise ValueError(f"bad duration {value!r}: use a number of seconds or 30s, 5m, 4h, 1d")
    if seconds < 0:
        raise ValueError("a duration cannot be negative")
    return seconds


class MarkedDoc:
    """Walks the composed YAML node tree, turning problems into ConfigError with file:line."""

    def __init__(self, source: str) -> None:
        self.source = source
        self._constructor = yaml.constructor.SafeConstructor()

    def error(self, node: yaml.Node, message: str) -> ConfigError:
        """A ConfigError pointing at `node`'s line."""
        return ConfigError(f"{self.source}:{node.start_mark.line + 1}: {message}")

    def mapping(
        self, node: yaml.Node, what: str, allowed: set[str], required: set[str] = frozenset()
    ) -> dict[str, yaml.Node]:
        """The value nodes of a mapping by key; unknown, duplicate or missing keys are errors."""
        if not isinstance(node, yaml.MappingNode):
            raise self.error(node, f"{what} must be a mapping")
        out: dict[str, yaml.Node] = {}
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
            if key not in allowed:
                known = ", ".join(sorted(allowed))
                raise self.error(key_node, f"unknown key {key!r} in {what} (known: {known})")
            if key in out:
                raise self.error(key_node, f"duplicate key {key!r} in {what}")
            out[key] = value_node
        for key in sorted(required - out.keys()):
            raise self.error(node, f"{what} needs {key!r}")
        return out

    def sequence(self, node: yaml.Node, what: str) -> list[yaml.Node]:
        """The items of a list node."""
        if not isinstance(node, yaml.SequenceNode):
            raise self.error(node, f"{what} must be a list")
        return list(node.value)

    def scalar(self, node: yaml.Node, what: str, kind: type | tuple[type, ...]) -> Any:
        """The value of a scalar node, which must be of `kind` (true/false only if bool is)."""
        if not isinstance(node, yaml.ScalarNode):
            raise self.error(node, f"{what} must be a single value")
        value = self._constructor.construct_object(node)
        if isinstance(value, bool) and bool not in (kind if isinstance(kind, tuple) else (kind,)):
            raise self.error(node, f"{what} must not be true/false")
        if not isinstance(value, kind):
            raise self.error(node, f"{what} has the wrong type ({type(value).__name__})")
        return value

    def duration(self, node: yaml.Node, what: str) -> float:
        """Seconds from a duration node."""
        try:
            return parse_duration(self.scalar(node, what, (str, int, float)))
        except ValueError as exc:
            raise self.error(node, f"{what}: {exc}") from None
