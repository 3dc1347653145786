"""Deployment revisions move by one: the first record seen of a deployment is taken at whatever
revision it has, after it only the current revision plus one.

A compacted topic read from the beginning may start a deployment at any revision (compaction
keeps its newest record), so the first verified record seen sets the current revision. After it,
a revision at or below the current one is a replay (`replayed_revision`) and one beyond the
current plus one skips revisions nobody saw (`revision_gap`): both are refused (PoisonMessage, so
the follower dead-letters and counts them) and the current revision stays in force. The one
legitimate gap is a follower that lagged while compaction removed revisions it had not read yet;
restarting the service reads the compacted topic afresh and takes the newest revision.

>>> gate, applied = RevisionGate(), []
>>> for revision in (7, 8):
...     gate.admit({"name": "d", "revision": revision}, applied.append)
>>> applied == [{"name": "d", "revision": 7}, {"name": "d", "revision": 8}], gate.current("d")
(True, 8)
>>> gate.admit({"name": "d", "revision": 10}, applied.append)  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
services.common.errors.PoisonMessage: revision_gap: ...
>>> gate.current("d")
8
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from services.common.errors import PoisonMessage, Reason

T = TypeVar("T")
NAME_CHARS = 64  # of a deployment name in a refusal (the dead letter keeps the whole record)


class RevisionGate:
    """The revision in force per deployment, and the rule a new record must pass."""

    def __init__(self) -> None:
        self._current: dict[str, int] = {}
        self._lock = threading.Lock()

    def current(self, name: str) -> int | None:
        """The revision in force for `name` (None before its first record)."""
        with self._lock:
            return self._current.get(name)

    def check(self, record: Mapping[str, Any]) -> None:
        """Return when `record` may be applied; PoisonMessage (replayed_revision or
        revision_gap) when it may not."""
        name, revision = str(record["name"]), int(record["revision"])
        current = self.current(name)
        if current is None or revision == current + 1:
            return
        shown = name[:NAME_CHARS]
        if revision <= current:
            raise PoisonMessage(
                Reason.REPLAYED_REVISION,
                f"deployment {shown} r{revision} is not newer than r{current}, the revision in "
                f"force: a replay, refused (r{current} stays)",
            )
        raise PoisonMessage(
            Reason.REVISION_GAP,
            f"deployment {shown} r{revision} skips r{current + 1}: refused, r{current} stays; "
            "if compaction removed revisions while this service lagged, restart it: it reads "
            "the compacted topic afresh and takes the newest revision",
        )

    def admit(self, record: Mapping[str, Any], apply: Callable[[Mapping[str, Any]], T]) -> T:
        """Check `record`, apply it, then make its revision the current one (a failed apply
        leaves the gate as it was, so a retry of the same record passes again)."""
        self.check(record)
        result = apply(record)
        with self._lock:
            self._current[str(record["name"])] = int(record["revision"])
        return result
