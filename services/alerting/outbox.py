"""The durable side of alerting in Redis: engine state and the delivery outbox, written together.

Keys under one namespace:
- `<ns>:state`: the engine's JSON state;
- `<ns>:outbox`: hash, notification id -> JSON entry (receiver, body, attempts, first queued);
- `<ns>:outbox:due`: sorted set, notification id -> when its next attempt may start.

`commit(state, notifications)` writes the state and queues the notifications in one MULTI/EXEC,
so a crash either keeps both or neither: a flushed group is never lost nor queued twice. The
delivery worker takes due entries, and reschedules or removes them one by one; an entry stays in
the outbox until it is delivered or dead-lettered, so a kill -9 mid-delivery re-sends it after
restart with the same id (receivers dedupe by `webhook-id`).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Mapping
from typing import Any

from redis.asyncio import Redis


@dataclasses.dataclass(frozen=True)
class Entry:
    """One queued notification: the exact body to sign and send, and its delivery history."""

    id: str
    receiver: str
    body: str
    status: str
    queued_at: float
    attempts: int = 0
    last_error: str = ""

    def to_json(self) -> str:
        """The stored form."""
        return json.dumps(dataclasses.asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, raw: str | bytes) -> Entry:
        """Inverse of `to_json`."""
        return cls(**json.loads(raw))


def state_key(namespace: str) -> str:
    """The Redis key of the engine state (read at start-up, written by `Store.commit`)."""
    return f"{namespace}:state"


class Store:
    """Engine state and outbox entries in Redis."""

    def __init__(self, redis: Redis, namespace: str) -> None:
        self.redis = redis
        self.state_key = state_key(namespace)
        self.items_key = f"{namespace}:outbox"
        self.due_key = f"{namespace}:outbox:due"

    async def commit(self, state: Mapping[str, Any], entries: Iterable[Entry] = ()) -> None:
        """Save the engine state and queue `entries` atomically (due now)."""
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.set(self.state_key, json.dumps(state, separators=(",", ":")))
            for entry in entries:
                # An id already queued (a re-flush after a crash) keeps its history.
                pipe.hsetnx(self.items_key, entry.id, entry.to_json())
                pipe.zadd(self.due_key, {entry.id: entry.queued_at}, nx=True)
            await pipe.execute()

    async def due(self, now: float, limit: int) -> list[str]:
        """Ids whose next attempt may start at `now`, earliest first."""
        return _text(await self.redis.zrangebyscore(self.due_key, "-inf", now, start=0, num=limit))

    async def get_many(self, ids: list[str]) -> list[Entry]:
        """The entries still queued among `ids`, in order (one round trip)."""
        if not ids:
            return []
        raws = await self.redis.hmget(self.items_key, ids)
        return [Entry.from_json(r) for r in raws if r is not None]

    async def reschedule(self, entry: Entry, at: float) -> None:
        """Store the entry's new history and its next attempt time."""
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(self.items_key, entry.id, entry.to_json())
            pipe.zadd(self.due_key, {entry.id: at})
            await pipe.execute()

    async def remove(self, entry_id: str) -> None:
        """Delivered or dead-lettered: forget it."""
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hdel(self.items_key, entry_id)
            pipe.zrem(self.due_key, entry_id)
            await pipe.execute()

    async def depth(self) -> int:
        """Entries waiting for delivery."""
        return int(await self.redis.zcard(self.due_key))

    async def entries(self, limit: int = 100) -> list[Entry]:
        """The earliest-due entries, for the API."""
        return await self.get_many(_text(await self.redis.zrange(self.due_key, 0, limit - 1)))


def _text(ids: list[bytes | str]) -> list[str]:
    """Sorted-set members as str (the client answers bytes unless told to decode)."""
    return [i.decode() if isinstance(i, bytes) else i for i in ids]
