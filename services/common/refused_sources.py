"""Dead letters grouped by the source record they refused, with every service that refused it.

Several services read the same topic (the scorer and drift both read `events`), so one bad
event gives one dead letter per service that reads it, and a replaying follower dead-letters
the same record again at each start. What people count is bad source records: dead letters
with the same source coordinates (topic, partition, offset) are one record, refused by the
services listed.

>>> letters = [
...     {"source_topic": "events", "source_partition": 0, "source_offset": 7,
...      "service": "scorer", "reason": "not_avro", "stage": "decode"},
...     {"source_topic": "events", "source_partition": 0, "source_offset": 7,
...      "service": "drift", "reason": "not_avro", "stage": "decode"},
...     {"source_topic": "events", "source_partition": 1, "source_offset": 2,
...      "service": "scorer", "reason": "wrong_type", "stage": "decode"},
...     {"source_topic": "events", "source_partition": 1, "source_offset": 2,
...      "service": "drift", "reason": "wrong_type", "stage": "decode"},
... ]
>>> summary(group(letters))
'2 bad source records, refused by drift and scorer (not_avro, wrong_type); 4 dead letters'
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

Source = tuple[str, int, int]  # (topic, partition, offset)


@dataclasses.dataclass
class RefusedSource:
    """One source record and what every service that refused it said."""

    topic: str
    partition: int
    offset: int
    key: bytes | None = None
    services: dict[str, str] = dataclasses.field(default_factory=dict)  # service -> reason
    stages: set[str] = dataclasses.field(default_factory=set)
    letters: int = 0
    first_at: int | None = None
    last_at: int | None = None

    @property
    def source(self) -> Source:
        """The record's coordinates."""
        return (self.topic, self.partition, self.offset)

    @property
    def refused_by(self) -> str:
        """The refusing services, sorted and joined with `+` (a bounded label)."""
        return "+".join(sorted(self.services))

    @property
    def reasons(self) -> list[str]:
        """The distinct reasons given, sorted."""
        return sorted(set(self.services.values()))


def source_of(letter: Mapping[str, Any]) -> Source:
    """A dead letter's source coordinates."""
    return (
        str(letter["source_topic"]),
        int(letter["source_partition"]),
        int(letter["source_offset"]),
    )


def group(letters: Iterable[Mapping[str, Any]]) -> list[RefusedSource]:
    """One entry per source record, in the order each was first refused."""
    found: dict[Source, RefusedSource] = {}
    for letter in letters:
        src = source_of(letter)
        entry = found.get(src)
        if entry is None:
            entry = found[src] = RefusedSource(*src, key=letter.get("source_key"))
        entry.services[str(letter.get("service") or "unknown")] = str(letter.get("reason"))
        entry.stages.add(str(letter.get("stage")))
        entry.letters += 1
        at = letter.get("failed_at")
        if isinstance(at, int):
            entry.first_at = at if entry.first_at is None else min(entry.first_at, at)
            entry.last_at = at if entry.last_at is None else max(entry.last_at, at)
    return list(found.values())


def _names(services: str) -> str:
    names = services.split("+")
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def summary(groups: list[RefusedSource]) -> str:
    """One line: how many bad source records, refused by whom and why, and how many letters."""
    if not groups:
        return "none"
    letters = sum(g.letters for g in groups)
    records = f"{len(groups)} bad source record{'s' if len(groups) != 1 else ''}"
    by = Counter(g.refused_by for g in groups)
    reasons = ", ".join(sorted({r for g in groups for r in g.reasons}))
    tail = f"{letters} dead letter{'s' if letters != 1 else ''}"
    if len(by) == 1:
        return f"{records}, refused by {_names(next(iter(by)))} ({reasons}); {tail}"
    parts = ", ".join(f"{n} by {_names(who)}" for who, n in sorted(by.items()))
    return f"{records} ({parts}; {reasons}); {tail}"


def counts(groups: list[RefusedSource]) -> dict[str, Any]:
    """Distinct source records, dead letters, and records by refusing services and by reason."""
    by_reason: Counter[str] = Counter()
    for g in groups:
        by_reason.update(g.reasons)
    return {
        "records": len(groups),
        "letters": sum(g.letters for g in groups),
        "by_services": dict(sorted(Counter(g.refused_by for g in groups).items())),
        "by_reason": dict(sorted(by_reason.items())),
        "summary": summary(groups),
    }
