"""The prediction/actual join entries in Redis: one JSON string per association id, with a TTL.

Reads happen before a batch is applied; writes go into the batch's state transaction (see
``state_store``) so the join and the window counts it feeds commit or roll back together.

An entry is the whole JSON object the joiner keeps for an id (a field per model's prediction
and the actual). The read is one MGET for the batch's ids. A write replaces the entry: ``SET ...
EX ttl NX`` for an id the read did not find, ``SET ... XX KEEPTTL`` for one it found, so each
entry lives for the TTL from its first write. One command per entry: a hash per id needed
HSETNX and EXPIRE per write and a Lua loop per read, about three times the Redis time, and
Redis shares its core with the broker. Only this group's transaction writes these keys, and
it checks the group's commit counter first (``state_store``), so the read a write is based on
is never stale. Entries of the former layout (hashes under ``:join:``) are left to expire.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import redis

from services.common.errors import RetryableError
from services.drift.redis_line import RedisLine


@dataclass(frozen=True)
class JoinWrites:
    """Entries to write, each as (key, JSON, 1 if the key is new else 0), and their TTL."""

    entries: list[tuple[str, str, int]]
    ttl_s: int


class JoinStore:
    """Join entries under ``<namespace>:join-entry:<deployment>:<association id>``."""

    def __init__(self, line: RedisLine, namespace: str, ttl_s: int) -> None:
        self.line = line  # the state store's: a read sent behind a commit sees its writes
        self.prefix = f"{namespace}:join-entry:"
        self.ttl_s = int(ttl_s)

    def key(self, deployment: str, association_id: str) -> str:
        """The Redis key of one association id's entry."""
        return f"{self.prefix}{deployment}:{association_id}"

    def request(self, keys: Iterable[str]) -> PendingFetch:
        """Send the read of these keys' entries; ``PendingFetch.entries()`` waits for it."""
        unique = list(dict.fromkeys(keys))
        if not unique:
            return PendingFetch([], self.line, None)
        try:
            ticket = self.line.send("MGET", *unique)
        except redis.RedisError as exc:
            raise RetryableError(f"join store read failed: {exc}") from exc
        return PendingFetch(unique, self.line, ticket)

    def fetch(self, keys: Iterable[str]) -> dict[str, bytes]:
        """The existing entries of these keys (missing ones left out)."""
        return self.request(keys).entries()

    def staged(self, writes: Sequence[tuple[str, str, bool]]) -> JoinWrites:
        """A batch's (key, entry JSON, new) writes as the state transaction takes them."""
        return JoinWrites([(key, value, int(new)) for key, value, new in writes], self.ttl_s)


class PendingFetch:
    """A join read in flight."""

    def __init__(self, keys: list[str], line: RedisLine, ticket: int | None) -> None:
        self.keys, self.line, self.ticket = keys, line, ticket

    def entries(self) -> dict[str, bytes]:
        """The existing entries (missing ones left out); raises RetryableError."""
        if self.ticket is None:
            return {}
        try:
            found = self.line.reply(self.ticket)
        except redis.RedisError as exc:
            raise RetryableError(f"join store read failed: {exc}") from exc
        return {k: v for k, v in zip(self.keys, found, strict=True) if v is not None}
