"""The prediction/actual join entries in Redis: one JSON string per association id, kept at
least the TTL from its first write.

Reads happen before a batch is applied; writes go into the batch's state transaction (see
``state_store``) so the join and the window counts it feeds commit or roll back together. The
drift loop sends a batch's read ahead of the previous batch's transaction, so the read does not
see that transaction's writes: the store keeps the entries it last staged and lays them over
what the read finds (``forget`` drops them when the state is reloaded).

An entry is the whole JSON object the joiner keeps for an id (a field per model's prediction
and the actual). Entries live in generations: a hash per deployment and generation of half the
service's TTL, ``<namespace>:join-gen:<deployment>:<generation>``, with the association id as
field. A new entry goes into the current generation; an entry found goes back into the
generation it was found in. Each write sets its generation's expiry to the generation's end plus
the deployment's TTL (its label delay when it sets one, else the service's), so an entry lives
at least that TTL from its first write, at most half the service's TTL longer, and no hash is
ever left without an expiry. Generations have the same length for every deployment and label
delay, so a changed label delay finds the entries written before the change (those keep the
expiry they were written with until they are written again). A read is one HMGET per deployment
and live generation: three at the service's TTL, one more per half of it in a longer delay. One
HSET per generation and batch costs Redis about a third of what one ``SET ... EX`` per entry
did, and Redis shares its two cores with the broker and the drift loop. Only this group's
transaction writes these keys, and it checks the group's commit counter first
(``state_store``), so the read a write is based on is never stale. A generation holds every
entry of its half-TTL, so its expiry frees many at once: the Redis started by ``infra/redis``
frees expired keys in the background (``lazyfree-lazy-expire``). Entries of the former layouts
(``:join-entry:`` strings, ``:join:`` hashes) are not read; they expire with their TTL.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import redis

from services.common.errors import RetryableError
from services.drift.redis_line import RedisLine

JoinKey = tuple[str, str]  # (deployment, association id)


@dataclass(frozen=True)
class JoinWrites:
    """A batch's entries by hash: (key, expiry as a Unix time, [id, JSON, id, JSON, ...])."""

    hashes: list[tuple[str, int, list[str]]]


class JoinStore:
    """Join entries in generation hashes under ``<namespace>:join-gen:``."""

    def __init__(
        self,
        line: RedisLine,
        namespace: str,
        ttl_s: int,
        clock: Callable[[], float] = time.time,
        label_delay: Callable[[str], int | None] = lambda _deployment: None,
    ) -> None:
        """``ttl_s``: the service's join TTL; ``label_delay``: a deployment's own (None: the
        service's)."""
        self.line = line  # the state store's: reads and the transactions that write go in order
        self.prefix = f"{namespace}:join-gen:"
        self.ttl_s = int(ttl_s)
        self.span = max(1, -(-self.ttl_s // 2))  # seconds per generation: half the TTL
        self.clock = clock
        self.label_delay = label_delay
        self._staged: dict[JoinKey, tuple[str, int]] = {}  # last staged: entry, generation
        self._found_in: dict[JoinKey, int] = {}  # generation of each entry the last read found

    def hash_key(self, deployment: str, generation: int) -> str:
        """The Redis key of a deployment's generation."""
        return f"{self.prefix}{deployment}:{generation}"

    def ttl(self, deployment: str) -> int:
        """How long a deployment's entries are kept at least, in seconds."""
        return self.label_delay(deployment) or self.ttl_s

    def _live(self, deployment: str) -> range:
        """The deployment's generations whose hashes may still exist, oldest first."""
        now = self.clock()
        return range(int((now - self.ttl(deployment)) // self.span), int(now // self.span) + 1)

    def request(self, keys: Iterable[JoinKey]) -> PendingFetch:
        """Send the read of these keys' entries; ``PendingFetch.entries()`` waits for it."""
        unique = list(dict.fromkeys(keys))
        staged = self._staged
        ahead = {k: staged[k] for k in unique if k in staged} if staged else {}
        ids: dict[str, list[str]] = defaultdict(list)
        for deployment, association_id in unique:
            ids[deployment].append(association_id)
        self._found_in = {}
        reads = []
        try:
            for deployment, of_deployment in ids.items():
                for g in self._live(deployment):
                    ticket = self.line.send("HMGET", self.hash_key(deployment, g), *of_deployment)
                    reads.append(((deployment, g), ticket))
        except redis.RedisError as exc:
            raise RetryableError(f"join store read failed: {exc}") from exc
        return PendingFetch(self.line, reads, ids, ahead, self._found_in)

    def fetch(self, keys: Iterable[JoinKey]) -> dict[JoinKey, bytes | str]:
        """The existing entries of these keys (missing ones left out)."""
        return self.request(keys).entries()

    def staged(self, writes: Sequence[tuple[JoinKey, str, bool]]) -> JoinWrites:
        """A batch's (key, entry JSON, new) writes as the state transaction takes them; reads
        requested from now on find these entries, whether the transaction has run or not."""
        current = int(self.clock() // self.span)
        found_in = self._found_in
        by_hash: dict[tuple[str, int], list[str]] = defaultdict(list)
        self._staged = {}
        for (deployment, association_id), value, new in writes:
            generation = current if new else found_in.get((deployment, association_id), current)
            by_hash[(deployment, generation)] += (association_id, value)
            self._staged[(deployment, association_id)] = (value, generation)
        return JoinWrites(
            [
                (self.hash_key(d, g), (g + 1) * self.span + self.ttl(d), fields)
                for (d, g), fields in by_hash.items()
            ]
        )

    def forget(self) -> None:
        """The staged entries are in Redis or lost with their transaction: read them there."""
        self._staged = {}


class PendingFetch:
    """A join read in flight, and the staged entries of its keys to lay over it."""

    def __init__(
        self,
        line: RedisLine,
        reads: list[tuple[tuple[str, int], int]],
        ids: dict[str, list[str]],
        ahead: dict[JoinKey, tuple[str, int]],
        found_in: dict[JoinKey, int],
    ) -> None:
        self.line, self.reads, self.ids, self.ahead = line, reads, ids, ahead
        self.found_in = found_in  # filled here: the store writes found entries back there

    def entries(self) -> dict[JoinKey, bytes | str]:
        """The existing entries (missing ones left out); raises RetryableError."""
        found: dict[JoinKey, bytes | str] = {}
        for (deployment, generation), ticket in self.reads:  # oldest first: the newest wins
            try:
                values = self.line.reply(ticket)
            except redis.RedisError as exc:
                raise RetryableError(f"join store read failed: {exc}") from exc
            for association_id, value in zip(self.ids[deployment], values, strict=True):
                if value is not None:
                    found[(deployment, association_id)] = value
                    self.found_in[(deployment, association_id)] = generation
        for key, (value, generation) in self.ahead.items():
            found[key] = value
            self.found_in[key] = generation
        return found
