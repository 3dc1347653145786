"""The prediction/actual join entries in Redis: one hash per association id, with a TTL.

Reads happen before a batch is applied; writes go into the batch's state transaction (see
``state_store``) so the join and the window counts it feeds commit or roll back together.
Fields are written with HSETNX: the first prediction per model and the first actual win even
if a write were ever repeated.

A micro-batch touches thousands of entries, so the read is one Lua script call rather than a
command per entry (the client's per-command cost, packing and a reply to parse, was most of
the batch's Redis time), and returns only the entries that exist; the writes travel as one JSON
argument of the state script.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import redis

from services.common.errors import RetryableError
from services.drift.sent_command import SentCommand

# KEYS: the entries to read. Returns {index, {field, value, ...}, ...} for the non-empty ones.
FETCH = """
local out = {}
for i, key in ipairs(KEYS) do
  local entry = redis.call('HGETALL', key)
  if #entry > 0 then
    out[#out + 1] = i
    out[#out + 1] = entry
  end
end
return out
"""


@dataclass(frozen=True)
class JoinWrites:
    """Entries to write with HSETNX, each as [key, field, value, ...], and the TTL to set."""

    entries: list[list[str]]
    ttl_s: int


class JoinStore:
    """Join entries under ``<namespace>:join:<deployment>:<association id>``."""

    def __init__(self, client: redis.Redis, namespace: str, ttl_s: int) -> None:
        self.client = client
        self.prefix = f"{namespace}:join:"
        self.ttl_s = int(ttl_s)

    def key(self, deployment: str, association_id: str) -> str:
        """The Redis key of one association id's entry."""
        return f"{self.prefix}{deployment}:{association_id}"

    def request(self, keys: Iterable[str]) -> PendingFetch:
        """Send the read of these keys' entries; ``PendingFetch.entries()`` waits for it."""
        unique = list(dict.fromkeys(keys))
        if not unique:
            return PendingFetch([], None)
        try:
            sent = SentCommand(self.client, "EVAL", FETCH, len(unique), *unique)
        except redis.RedisError as exc:
            raise RetryableError(f"join store read failed: {exc}") from exc
        return PendingFetch(unique, sent)

    def fetch(self, keys: Iterable[str]) -> dict[str, dict[Any, Any]]:
        """The existing entries of these keys (missing ones left out)."""
        return self.request(keys).entries()

    def staged(self, writes: Mapping[str, Mapping[str, str]]) -> JoinWrites:
        """A batch's writes as the state transaction takes them (``state_store``)."""
        entries = []
        for key, fields in writes.items():
            entry = [key]
            for item in fields.items():
                entry += item
            entries.append(entry)
        return JoinWrites(entries, self.ttl_s)


class PendingFetch:
    """A join read in flight."""

    def __init__(self, keys: list[str], sent: SentCommand | None) -> None:
        self.keys, self.sent = keys, sent

    def entries(self) -> dict[str, dict[Any, Any]]:
        """The existing entries (missing ones left out); raises RetryableError."""
        if self.sent is None:
            return {}
        try:
            found = self.sent.reply()
        except redis.RedisError as exc:
            raise RetryableError(f"join store read failed: {exc}") from exc
        return {
            self.keys[int(i) - 1]: dict(zip(e[::2], e[1::2], strict=True))
            for i, e in zip(found[::2], found[1::2], strict=True)
        }
