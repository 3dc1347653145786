"""Label matchers as Alertmanager spells them: `name="v"`, `name!="v"`, `name=~"re"`, `name!~"re"`.

Used by routes and by silences. Regular expressions are anchored at both ends, as in
Alertmanager, so `deployment=~"fraud"` does not match `fraud-eu`. A missing label matches as "".

>>> Matcher.parse('severity=~"warning|critical"').matches({"severity": "critical"})
True
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping
from typing import Any

OPERATORS = ("=~", "!~", "!=", "=")  # longest first, so parsing is unambiguous
LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_SPELLING = re.compile(
    r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*(?:"((?:[^"\\]|\\.)*)"|([^"\s=!~,{}]*))\s*'
)


class MatcherError(ValueError):
    """A matcher that cannot be parsed or compiled; the message says which."""


@dataclasses.dataclass(frozen=True)
class Matcher:
    """One condition on one label."""

    name: str
    op: str
    value: str
    _regex: re.Pattern[str] | None = dataclasses.field(
        default=None, init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        if not LABEL_NAME.fullmatch(self.name):
            raise MatcherError(f"invalid label name {self.name!r}")
        if self.op not in OPERATORS:
            raise MatcherError(f"unknown matcher operator {self.op!r}")
        if self.op in ("=~", "!~"):
            try:
                pattern = re.compile(f"(?:{self.value})")
            except re.error as exc:
                raise MatcherError(f"bad regular expression {self.value!r}: {exc}") from None
            object.__setattr__(self, "_regex", pattern)

    @classmethod
    def parse(cls, text: str) -> Matcher:
        """Parse one `name<op>"value"` spelling (quotes optional for simple values)."""
        found = _SPELLING.fullmatch(text)
        if found is None:
            raise MatcherError(f'cannot parse matcher {text!r}; expected name="value"')
        name, op, quoted, bare = found.groups()
        value = re.sub(r"\\(.)", r"\1", quoted) if quoted is not None else bare
        return cls(name, op, value)

    def matches(self, labels: Mapping[str, str]) -> bool:
        """True when the label (absent counts as "") satisfies this condition."""
        got = labels.get(self.name, "")
        if self.op == "=":
            return got == self.value
        if self.op == "!=":
            return got != self.value
        assert self._regex is not None
        hit = self._regex.fullmatch(got) is not None
        return hit if self.op == "=~" else not hit

    def __str__(self) -> str:
        escaped = self.value.replace("\\", "\\\\").replace('"', '\\"')
        return f'{self.name}{self.op}"{escaped}"'

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able form."""
        return {"name": self.name, "op": self.op, "value": self.value}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Matcher:
        """Inverse of `to_dict`."""
        return cls(str(data["name"]), str(data["op"]), str(data["value"]))


def matches_all(matchers: Iterable[Matcher], labels: Mapping[str, str]) -> bool:
    """True when every matcher matches (an empty list matches everything)."""
    return all(m.matches(labels) for m in matchers)
