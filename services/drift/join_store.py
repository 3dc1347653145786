"""The prediction/actual join entries in Redis: one hash per association id, with a TTL.

Reads happen before a batch is applied; writes are staged into the batch's state transaction
(see ``state_store``) so the join and the window counts it feeds commit or roll back together.
Fields are written with HSETNX: the first prediction per model and the first actual win even
if a write were ever repeated.

A micro-batch touches thousands of entries, so each direction is one Lua script call rather
than a command per entry: the per-command cost of the client (packing, a reply to parse) was
most of the batch's Redis time. The read returns only the entries that exist; the write runs
inside the MULTI/EXEC, so it is as atomic with the offsets as separate commands were.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

import redis

from services.common.errors import RetryableError

_dumps = json.JSONEncoder(separators=(",", ":")).encode
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
# KEYS: the entries to write. ARGV[1]: the TTL; ARGV[2]: a JSON list, per key, of its fields
# and values as one flat list of strings (one argument instead of two per field: packing
# arguments is the client's cost).
WRITE = """
local ttl, writes = ARGV[1], cjson.decode(ARGV[2])
for i, key in ipairs(KEYS) do
  local fields = writes[i]
  for j = 1, #fields, 2 do
    redis.call('HSETNX', key, fields[j], fields[j + 1])
  end
  redis.call('EXPIRE', key, ttl)
end
return #KEYS
"""


class JoinStore:
    """Join entries under ``<namespace>:join:<deployment>:<association id>``."""

    def __init__(self, client: redis.Redis, namespace: str, ttl_s: int) -> None:
        self.client = client
        self.prefix = f"{namespace}:join:"
        self.ttl_s = int(ttl_s)

    def key(self, deployment: str, association_id: str) -> str:
        """The Redis key of one association id's entry."""
        return f"{self.prefix}{deployment}:{association_id}"

    def fetch(self, keys: Iterable[str]) -> dict[str, dict[Any, Any]]:
        """The existing entries of these keys (missing ones left out)."""
        unique = list(dict.fromkeys(keys))
        if not unique:
            return {}
        try:
            found = self.client.eval(FETCH, len(unique), *unique)
        except redis.RedisError as exc:
            raise RetryableError(f"join store read failed: {exc}") from exc
        return {
            unique[int(i) - 1]: dict(zip(e[::2], e[1::2], strict=True))
            for i, e in zip(found[::2], found[1::2], strict=True)
        }

    def stage(self, pipe: Any, writes: Mapping[str, Mapping[str, str]]) -> None:
        """Queue the writes (and refresh each entry's TTL) into a transaction pipeline."""
        if not writes:
            return
        flat = [[x for item in fields.items() for x in item] for fields in writes.values()]
        pipe.eval(WRITE, len(writes), *writes, self.ttl_s, _dumps(flat))
