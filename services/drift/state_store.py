"""Drift state and consumed offsets in Redis, written in one atomic script per micro-batch (R11).

Keys under ``streamops:drift:<group>`` (``...:<group>:shard-<i>-of-<N>`` for a process of a
sharded group, whose shared keys the same script writes: ``services.drift.merge``):
``:offsets`` (hash "topic|partition" -> next offset),
``:monitor:<deployment>`` (the monitor's state as JSON), ``:monitors`` (set of deployments),
``:closed:<deployment>`` (hash window seq -> summary of a closed window, the newest
``history`` kept), ``:commits`` (transactions committed), and the join entries of
``join_store``. Because the window state and the offsets it reflects commit together, a crash
of the service, or of Redis with AOF everysec (which may lose the last second of writes), rolls
both back to the same point, and the replay from those offsets recomputes exactly what was
lost: nothing is counted twice or missed. Kafka offsets are not used for correctness.

If Redis restarts and lost its last writes while this process keeps running, the process's
memory is ahead of Redis. Each transaction therefore checks the commit counter against the count
this process expects, inside the script; on a mismatch nothing is written and
``StateRolledBack`` tells the caller to reload and rewind. The check also makes a second process
writing the same group's state fail its transaction instead of interleaving.

``prepare`` serialises a batch's transaction; ``send`` writes it to Redis without waiting and
``settle`` reads its reply. The drift loop applies the next batch in between, while Redis runs
the script on another core. It goes on the ``RedisLine`` the join store reads on, behind the
next batch's join read, which therefore does not see its writes (``join_store`` lays them over
the read) and is answered without waiting for them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import redis

from services.common.errors import RetryableError
from services.drift.join_store import JoinWrites
from services.drift.merge import SharedWrites
from services.drift.redis_line import RedisLine

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


@dataclass(frozen=True)
class StateWrite:
    """One batch's transaction, serialised: nothing in it changes after ``prepare``."""

    # monitors, closed summaries, join hashes, offsets, parts, marks, merged windows
    counts: tuple[int, int, int, int, int, int, int]
    args: list[Any]  # their fields, flat, in that order (see COMMIT)


# One script per batch: the check against lost writes, then every write. A script runs
# atomically, as MULTI/EXEC does, in one round trip instead of three (WATCH, GET, EXEC). It
# names its keys in its arguments, which a single Redis allows (Redis Cluster is not supported).
# The writes are flat arguments (no JSON to decode in Redis): after ns, expected commits and
# the seven counts come monitors (name, state), closed summaries (key, seq, summary, seq to drop
# or ""), join hashes (key, expiry, n, then n fields and values), offsets (field, offset), and
# a sharded group's shared keys (services.drift.merge): parts, marks and merged windows.
# A join hash takes its fields in HSETs of 2,000 (Lua's unpack has a stack limit).
COMMIT = """
local ns, expected = ARGV[1], tonumber(ARGV[2])
local found = tonumber(redis.call('GET', ns .. ':commits') or '0')
if found ~= expected then
  return {err = 'ROLLEDBACK Redis holds ' .. found .. ' commits, this process made ' .. expected}
end
redis.call('INCR', ns .. ':commits')
local i = 10
for _ = 1, tonumber(ARGV[3]) do
  redis.call('SADD', ns .. ':monitors', ARGV[i])
  redis.call('SET', ns .. ':monitor:' .. ARGV[i], ARGV[i + 1])
  i = i + 2
end
for _ = 1, tonumber(ARGV[4]) do
  redis.call('HSET', ARGV[i], ARGV[i + 1], ARGV[i + 2])
  if ARGV[i + 3] ~= '' then redis.call('HDEL', ARGV[i], ARGV[i + 3]) end
  i = i + 4
end
for _ = 1, tonumber(ARGV[5]) do
  local key, at = ARGV[i], ARGV[i + 1]
  local last = i + 2 + 2 * tonumber(ARGV[i + 2])
  i = i + 3
  while i <= last do
    local j = math.min(i + 3999, last)
    redis.call('HSET', key, unpack(ARGV, i, j))
    i = j + 1
  end
  redis.call('EXPIREAT', key, at)
end
for _ = 1, tonumber(ARGV[6]) do
  redis.call('HSET', ns .. ':offsets', ARGV[i], ARGV[i + 1])
  i = i + 2
end
for _ = 1, tonumber(ARGV[7]) do
  redis.call('HSET', ARGV[i], ARGV[i + 1], ARGV[i + 2])
  redis.call('SADD', ARGV[i + 3], ARGV[i + 4])
  redis.call('SADD', ARGV[i + 5], ARGV[i + 6])
  i = i + 7
end
for _ = 1, tonumber(ARGV[8]) do
  redis.call('HSET', ARGV[i], ARGV[i + 1], ARGV[i + 2])
  i = i + 3
end
for _ = 1, tonumber(ARGV[9]) do
  redis.call('SREM', ARGV[i], ARGV[i + 1])
  redis.call('DEL', ARGV[i + 2])
  local highest = redis.call('GET', ARGV[i + 3])
  if not highest or tonumber(highest) < tonumber(ARGV[i + 1]) then
    redis.call('SET', ARGV[i + 3], ARGV[i + 1])
  end
  i = i + 4
end
return found + 1
"""


def _field(tp: TopicPartitionKey) -> str:
    return f"{tp[0]}|{tp[1]}"


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


class StateStore:
    """Loads and transactionally saves the drift service's state."""

    def __init__(
        self,
        client: redis.Redis,
        line: RedisLine,
        namespace: str,
        history: int = 1000,
        closed_namespace: str | None = None,
    ) -> None:
        self.client, self.line = client, line
        self.ns = namespace
        # Where closed-window summaries go: a sharded group's shared keys (reports are merged).
        self.closed_ns = closed_namespace or namespace
        self.history = int(history)
        self.expected = 0  # commits this process believes Redis holds
        self._in_flight: int | None = None  # the ticket of a transaction sent, reply unread

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

    def prepare(
        self,
        monitors: Mapping[str, Mapping[str, Any]],
        offsets: Mapping[TopicPartitionKey, int],
        closed: Sequence[ClosedSummary] = (),
        joins: JoinWrites | None = None,
        shared: SharedWrites | None = None,
    ) -> StateWrite:
        """Serialise one batch's transaction now, so it can be sent while the state moves on."""
        args: list[Any] = []
        for name, state in monitors.items():
            args += (name, _dumps(state))
        for c in closed:
            drop = str(c.seq - self.history) if c.seq >= self.history else ""
            args += (f"{self.closed_ns}:closed:{c.deployment}", str(c.seq), _dumps(c.summary), drop)
        hashes = [] if joins is None else joins.hashes
        for key, expiry, fields in hashes:
            args += (key, expiry, len(fields) // 2, *fields)
        for tp, o in offsets.items():
            args += (_field(tp), o)
        shared = shared or SharedWrites([], [], [])
        args += (*shared.parts, *shared.marks, *shared.merged)
        counts = (len(monitors), len(closed), len(hashes), len(offsets))
        counts += (len(shared.parts) // 7, len(shared.marks) // 3, len(shared.merged) // 4)
        return StateWrite(counts, args)

    def send(self, w: StateWrite) -> None:
        """Send a transaction without waiting for it (after settling the one in flight)."""
        self.settle()
        args = ("EVAL", COMMIT, 0, self.ns, self.expected, *w.counts, *w.args)
        try:
            self._in_flight = self.line.send(*args)
        except redis.RedisError as exc:
            raise RetryableError(f"state commit failed: {exc}") from exc

    def settle(self) -> None:
        """Wait for the transaction in flight, if any; raise if it did not commit."""
        ticket, self._in_flight = self._in_flight, None
        if ticket is None:
            return
        try:
            self.line.reply(ticket)
        except redis.ResponseError as exc:
            if str(exc).startswith("ROLLEDBACK"):
                raise StateRolledBack(str(exc).removeprefix("ROLLEDBACK ")) from exc
            raise RetryableError(f"state commit failed: {exc}") from exc
        except redis.RedisError as exc:
            raise RetryableError(f"state commit failed: {exc}") from exc
        self.expected += 1

    def write(self, w: StateWrite) -> None:
        """Send a transaction and wait for it."""
        self.send(w)
        self.settle()

    def closed(self, deployment: str) -> dict[int, dict[str, Any]]:
        """The kept summaries of a deployment's closed windows, by window seq."""
        try:
            raw = self.client.hgetall(f"{self.closed_ns}:closed:{deployment}")
        except redis.RedisError as exc:
            raise RetryableError(f"state read failed: {exc}") from exc
        return {int(k): json.loads(v) for k, v in raw.items()}

    def ping(self) -> bool:
        """True when Redis answers (and has finished loading its data)."""
        try:
            return bool(self.client.ping())
        except redis.RedisError:
            return False
