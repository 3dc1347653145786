"""Drift state and consumed offsets in Redis, written in one MULTI/EXEC per micro-batch (R11).

Keys under ``streamops:drift:<group>``: ``:offsets`` (hash "topic|partition" -> next offset),
``:monitor:<deployment>`` (the monitor's state as JSON), ``:monitors`` (set of deployments),
``:closed:<deployment>`` (hash window seq -> summary of a closed window, the newest
``history`` kept), ``:commits`` (transactions committed). Because the window state and the
offsets it reflects commit together, a crash of the service, or of Redis with AOF everysec
(which may lose the last second of writes), rolls both back to the same point, and the replay
from those offsets recomputes exactly what was lost: nothing is counted twice or missed. Kafka
offsets are not used for correctness.

If Redis restarts and lost its last writes while this process keeps running, the process's
memory is ahead of Redis. Each transaction therefore WATCHes the commit counter and checks it
against the count this process expects; on a mismatch nothing is written and
``StateRolledBack`` tells the caller to reload and rewind. The WATCH also makes a second process
writing the same group's state fail its transaction instead of interleaving.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import redis

from services.common.errors import RetryableError

TopicPartitionKey = tuple[str, int]


class StateRolledBack(RetryableError):
    """Redis holds older state than this process wrote (it restarted and lost writes)."""


@dataclass(frozen=True)
class Snapshot:
    """What Redis holds: every monitor's state and the next offset per topic-partition."""

    monitors: dict[str, dict[str, Any]]
    offsets: dict[TopicPartitionKey, int]


@dataclass(frozen=True)
class ClosedSummary:
    """A closed window's counts, kept for audits and the R11 check."""

    deployment: str
    seq: int
    summary: dict[str, Any]


def _field(tp: TopicPartitionKey) -> str:
    return f"{tp[0]}|{tp[1]}"


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


class StateStore:
    """Loads and transactionally saves the drift service's state."""

    def __init__(self, client: redis.Redis, namespace: str, history: int = 1000) -> None:
        self.client = client
        self.ns = namespace
        self.history = int(history)
        self.expected = 0  # commits this process believes Redis holds

    def load(self) -> Snapshot:
        """Every stored monitor and offset."""
        try:
            names = sorted(n.decode() for n in self.client.smembers(f"{self.ns}:monitors"))
            raw = self.client.mget([f"{self.ns}:monitor:{n}" for n in names]) if names else []
            offsets = self.client.hgetall(f"{self.ns}:offsets")
            commits = int(self.client.get(f"{self.ns}:commits") or 0)
        except redis.RedisError as exc:
            raise RetryableError(f"state load failed: {exc}") from exc
        monitors = {n: json.loads(r) for n, r in zip(names, raw, strict=True) if r}
        parsed = {}
        for k, v in offsets.items():
            topic, _, part = k.decode().rpartition("|")
            parsed[(topic, int(part))] = int(v)
        self.expected = commits
        return Snapshot(monitors, parsed)

    def commit(
        self,
        monitors: Mapping[str, Mapping[str, Any]],
        offsets: Mapping[TopicPartitionKey, int],
        closed: Sequence[ClosedSummary] = (),
        stage: Callable[[Any], None] | None = None,
    ) -> None:
        """One MULTI/EXEC: monitor states, closed summaries, staged writes and offsets."""
        counter = f"{self.ns}:commits"
        try:
            pipe = self.client.pipeline(transaction=True)
            pipe.watch(counter)
            found = int(pipe.get(counter) or 0)
            if found != self.expected:
                pipe.reset()
                raise StateRolledBack(
                    f"Redis holds {found} commits, this process made {self.expected}"
                )
            pipe.multi()
            pipe.incr(counter)
            for name, state in monitors.items():
                pipe.sadd(f"{self.ns}:monitors", name)
                pipe.set(f"{self.ns}:monitor:{name}", _dumps(state))
            for c in closed:
                key = f"{self.ns}:closed:{c.deployment}"
                pipe.hset(key, str(c.seq), _dumps(c.summary))
                if c.seq >= self.history:
                    pipe.hdel(key, str(c.seq - self.history))
            if stage is not None:
                stage(pipe)
            if offsets:
                pipe.hset(
                    f"{self.ns}:offsets", mapping={_field(tp): o for tp, o in offsets.items()}
                )
            pipe.execute()
            self.expected += 1
        except redis.RedisError as exc:
            raise RetryableError(f"state commit failed: {exc}") from exc

    def closed(self, deployment: str) -> dict[int, dict[str, Any]]:
        """The kept summaries of a deployment's closed windows, by window seq."""
        try:
            raw = self.client.hgetall(f"{self.ns}:closed:{deployment}")
        except redis.RedisError as exc:
            raise RetryableError(f"state read failed: {exc}") from exc
        return {int(k): json.loads(v) for k, v in raw.items()}

    def ping(self) -> bool:
        """True when Redis answers (and has finished loading its data)."""
        try:
            return bool(self.client.ping())
        except redis.RedisError:
            return False
