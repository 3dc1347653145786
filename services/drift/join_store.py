"""The prediction/actual join entries in Redis: one hash per association id, with a TTL.

Reads happen before a batch is applied; writes are staged into the batch's state transaction
(see ``state_store``) so the join and the window counts it feeds commit or roll back together.
Fields are written with HSETNX: the first prediction per model and the first actual win even
if a write were ever repeated.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import redis

from services.common.errors import RetryableError


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
        unique = sorted(set(keys))
        if not unique:
            return {}
        try:
            pipe = self.client.pipeline(transaction=False)
            for key in unique:
                pipe.hgetall(key)
            found = pipe.execute()
        except redis.RedisError as exc:
            raise RetryableError(f"join store read failed: {exc}") from exc
        return {k: e for k, e in zip(unique, found, strict=True) if e}

    def stage(self, pipe: Any, writes: Mapping[str, Mapping[str, str]]) -> None:
        """Queue the writes (and refresh each entry's TTL) into a transaction pipeline."""
        for key, fields in writes.items():
            for field, value in fields.items():
                pipe.hsetnx(key, field, value)
            pipe.expire(key, self.ttl_s)
