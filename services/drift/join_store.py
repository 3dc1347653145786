"""The prediction/actual join entries in Redis: one JSON string per association id, with a TTL.

Reads happen before a batch is applied; writes go into the batch's state transaction (see
``state_store``) so the join and the window counts it feeds commit or roll back together. The
drift loop sends a batch's read ahead of the previous batch's transaction, so the read does not
see that transaction's writes: the store keeps the entries it last staged and lays them over
what the read finds (``forget`` drops them when the state is reloaded).

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
        self._staged: dict[str, str] = {}  # key -> entry JSON of the last writes staged

    def key(self, deployment: str, association_id: str) -> str:
        """The Redis key of one association id's entry."""
        return f"{self.prefix}{deployment}:{association_id}"

    def request(self, keys: Iterable[str]) -> PendingFetch:
        """Send the read of these keys' entries; ``PendingFetch.entries()`` waits for it."""
        unique = list(dict.fromkeys(keys))
        staged = self._staged
        ahead = {k: staged[k] for k in unique if k in staged} if staged else {}
        if not unique:
            return PendingFetch([], self.line, None, ahead)
        try:
            ticket = self.line.send("MGET", *unique)
        except redis.RedisError as exc:
            raise RetryableError(f"join store read failed: {exc}") from exc
        return PendingFetch(unique, self.line, ticket, ahead)

    def fetch(self, keys: Iterable[str]) -> dict[str, bytes | str]:
        """The existing entries of these keys (missing ones left out)."""
        return self.request(keys).entries()

    def staged(self, writes: Sequence[tuple[str, str, bool]]) -> JoinWrites:
        """A batch's (key, entry JSON, new) writes as the state transaction takes them; reads
        requested from now on find these entries, whether the transaction has run or not."""
        self._staged = {key: value for key, value, _ in writes}
        return JoinWrites([(key, value, int(new)) for key, value, new in writes], self.ttl_s)

    def forget(self) -> None:
        """The staged entries are in Redis or lost with their transaction: read them there."""
        self._staged = {}


class PendingFetch:
    """A join read in flight, and the staged entries of its keys to lay over it."""

    def __init__(
        self, keys: list[str], line: RedisLine, ticket: int | None, ahead: dict[str, str]
    ) -> None:
        self.keys, self.line, self.ticket, self.ahead = keys, line, ticket, ahead

    def entries(self) -> dict[str, bytes | str]:
        """The existing entries (missing ones left out); raises RetryableError."""
        if self.ticket is None:
            return dict(self.ahead)
        try:
            found = self.line.reply(self.ticket)
        except redis.RedisError as exc:
            raise RetryableError(f"join store read failed: {exc}") from exc
        entries: dict[str, bytes | str] = {
            k: v for k, v in zip(self.keys, found, strict=True) if v is not None
        }
        entries.update(self.ahead)
        return entries
