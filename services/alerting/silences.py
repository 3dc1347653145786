"""Silences and acknowledgements: what keeps a firing alert from being sent.

A silence mutes every alert whose labels match all its matchers between `starts_at` and
`ends_at`; expiring one sets `ends_at` to now (it stays listed until garbage-collected). An
acknowledgement is on one fingerprint: it suppresses repeats of that alert until the alert
resolves (`on_resolved`), but never news such as another alert joining the group. Implements
grouping's `Suppressor`. Time is passed in; `state()`/`from_state()` are plain JSON.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from services.alerting.matchers import Matcher, MatcherError, matches_all
from services.common.errors import StreamopsError

MAX_SILENCES = 10_000
MAX_MATCHERS = 32
MAX_TEXT = 1_000


class SilenceError(StreamopsError):
    """A silence or acknowledgement request that cannot be accepted; the message says why."""


@dataclasses.dataclass(frozen=True)
class Silence:
    """Mute alerts matching every matcher from `starts_at` until `ends_at` (epoch seconds)."""

    id: str
    matchers: tuple[Matcher, ...]
    starts_at: float
    ends_at: float
    created_by: str
    comment: str
    updated_at: float

    def status(self, now: float) -> str:
        """pending, active or expired."""
        if now < self.starts_at:
            return "pending"
        return "active" if now < self.ends_at else "expired"

    def mutes(self, labels: Mapping[str, str], now: float) -> bool:
        """True when active at `now` and every matcher matches."""
        return self.status(now) == "active" and matches_all(self.matchers, labels)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able form, also what the API returns."""
        return {**dataclasses.asdict(self), "matchers": [m.to_dict() for m in self.matchers]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Silence:
        """Inverse of `to_dict`."""
        fields = {f.name: data[f.name] for f in dataclasses.fields(cls)}
        fields["matchers"] = tuple(Matcher.from_dict(m) for m in data["matchers"])
        return cls(**fields)


@dataclasses.dataclass(frozen=True)
class Ack:
    """Someone has seen this firing alert: do not repeat it until it resolves."""

    fingerprint: str
    created_by: str
    comment: str
    created_at: float


class Silences:
    """The set of silences and acknowledgements."""

    def __init__(self, new_id: Callable[[], str] = lambda: uuid.uuid4().hex) -> None:
        self._new_id = new_id
        self._silences: dict[str, Silence] = {}
        self._acks: dict[str, Ack] = {}

    def add(
        self,
        matchers: Sequence[Matcher | str],
        starts_at: float,
        ends_at: float,
        created_by: str,
        comment: str,
        now: float,
    ) -> Silence:
        """Create a silence; SilenceError if it is malformed or would mute everything."""
        try:
            parsed = tuple(m if isinstance(m, Matcher) else Matcher.parse(m) for m in matchers)
        except MatcherError as exc:
            raise SilenceError(str(exc)) from None
        if not parsed or len(parsed) > MAX_MATCHERS:
            raise SilenceError(f"a silence needs 1 to {MAX_MATCHERS} matchers")
        if all(m.matches({}) for m in parsed):
            # As in Alertmanager: a silence whose matchers all match "" would mute every alert.
            raise SilenceError("at least one matcher must not match the empty string")
        if ends_at <= starts_at or ends_at <= now:
            raise SilenceError("ends_at must be after starts_at and in the future")
        if not created_by.strip() or len(created_by) > MAX_TEXT or len(comment) > MAX_TEXT:
            raise SilenceError(f"created_by is required; texts are at most {MAX_TEXT} chars")
        self.gc(now)
        if len(self._silences) >= MAX_SILENCES:
            raise SilenceError(f"too many silences (at most {MAX_SILENCES})")
        silence = Silence(
            self._new_id(), parsed, max(starts_at, now), ends_at, created_by, comment, now
        )
        self._silences[silence.id] = silence
        return silence

    def expire(self, silence_id: str, now: float) -> Silence:
        """End a silence now; KeyError if unknown, SilenceError if already expired."""
        silence = self._silences[silence_id]
        if silence.status(now) == "expired":
            raise SilenceError(f"silence {silence_id} has already expired")
        # A pending silence expires without ever starting.
        ended = dataclasses.replace(
            silence, starts_at=min(silence.starts_at, now), ends_at=now, updated_at=now
        )
        self._silences[silence_id] = ended
        return ended

    def get(self, silence_id: str) -> Silence:
        """One silence by id; KeyError if unknown."""
        return self._silences[silence_id]

    def list_silences(self, now: float, include_expired: bool = False) -> list[Silence]:
        """Silences ordered by start, expired ones only when asked."""
        return sorted(
            (s for s in self._silences.values() if include_expired or s.status(now) != "expired"),
            key=lambda s: (s.starts_at, s.id),
        )

    def silenced_by(self, labels: Mapping[str, str], now: float) -> list[str]:
        """Ids of the active silences muting these labels."""
        return sorted(s.id for s in self._silences.values() if s.mutes(labels, now))

    def is_silenced(self, labels: Mapping[str, str], now: float) -> bool:
        """True when an active silence mutes these labels."""
        return any(s.mutes(labels, now) for s in self._silences.values())

    def ack(self, fingerprint: str, created_by: str, comment: str, now: float) -> Ack:
        """Acknowledge one firing alert by fingerprint."""
        if not created_by.strip() or len(created_by) > MAX_TEXT or len(comment) > MAX_TEXT:
            raise SilenceError(f"created_by is required; texts are at most {MAX_TEXT} chars")
        if len(fingerprint) != 16 or any(c not in "0123456789abcdef" for c in fingerprint):
            raise SilenceError("a fingerprint is 16 lower-case hex digits")
        ack = Ack(fingerprint, created_by, comment, now)
        self._acks[fingerprint] = ack
        return ack

    def is_acked(self, fingerprint: str, now: float) -> bool:
        """True while this alert's acknowledgement holds."""
        return fingerprint in self._acks

    def on_resolved(self, fingerprint: str) -> None:
        """The alert resolved: its acknowledgement ends, so a new incident notifies again."""
        self._acks.pop(fingerprint, None)

    def acks(self) -> list[Ack]:
        """Current acknowledgements."""
        return sorted(self._acks.values(), key=lambda a: a.created_at)

    def gc(self, now: float, retention_s: float = 86_400.0) -> int:
        """Forget silences expired longer than `retention_s` ago; how many went."""
        old = [i for i, s in self._silences.items() if s.ends_at < now - retention_s]
        for i in old:
            del self._silences[i]
        return len(old)

    def state(self) -> dict[str, Any]:
        """Everything, as plain JSON-able data."""
        return {
            "silences": [s.to_dict() for s in self._silences.values()],
            "acks": [dataclasses.asdict(a) for a in self._acks.values()],
        }

    @classmethod
    def from_state(
        cls, state: Mapping[str, Any], new_id: Callable[[], str] = lambda: uuid.uuid4().hex
    ) -> Silences:
        """Inverse of `state()`."""
        out = cls(new_id)
        for raw in state["silences"]:
            silence = Silence.from_dict(raw)
            out._silences[silence.id] = silence
        for raw in state["acks"]:
            out._acks[raw["fingerprint"]] = Ack(**raw)
        return out
