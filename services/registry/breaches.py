"""Threshold breaches in the view: a bounded timeline per deployment and the current state.

Every write is idempotent and independent of arrival order, so a replay reproduces the live state:
the timeline keeps the newest `kept` transitions by (observed_at, breach_id), which is the top of
everything ever applied whatever the order; the current state of each figure (deployment, kind,
metric, feature) is its newest transition by the same order.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import redis

BREACHES_KEPT = 200  # transitions kept per deployment (the dashboard's alerts timeline)


def _dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def figure_of(breach: Mapping[str, Any]) -> str:
    """What a breach is about: the same figure fires and resolves under one name."""
    return f"{breach['kind']}|{breach['metric']}|{breach.get('feature') or ''}"


def _order(breach: Mapping[str, Any]) -> tuple[int, str]:
    return int(breach["observed_at"]), str(breach["breach_id"])


class BreachLog:
    """Reads and idempotent writes of ThresholdBreach records under a registry namespace."""

    def __init__(self, client: redis.Redis, ns: str, kept: int = BREACHES_KEPT) -> None:
        if kept < 1:
            raise ValueError("breaches kept must be >= 1")
        self.r = client
        self.ns = ns
        self.kept = kept

    def _k(self, *parts: str) -> str:
        return self.ns + ":".join(("breach", *parts))

    def apply(self, breach: Mapping[str, Any]) -> None:
        """Record one firing or resolved transition."""
        dep, bid = breach["deployment"], breach["breach_id"]
        body = _dumps(dict(breach))
        timeline = self._k("timeline", dep)
        pipe = self.r.pipeline(transaction=True)
        pipe.hset(self._k("record", dep), bid, body)
        pipe.zadd(timeline, {bid: int(breach["observed_at"])})
        pipe.sadd(self._k("deployments"), dep)
        pipe.execute()
        overflow = self.r.zcard(timeline) - self.kept
        if overflow > 0:
            # zset order is (score, member): the oldest by (observed_at, breach_id) go first.
            old = self.r.zrange(timeline, 0, overflow - 1)
            pipe = self.r.pipeline(transaction=True)
            pipe.zrem(timeline, *old)
            pipe.hdel(self._k("record", dep), *old)
            pipe.execute()
        self._set_current(dep, breach, body)

    def _set_current(self, dep: str, breach: Mapping[str, Any], body: str) -> None:
        key, figure = self._k("current", dep), figure_of(breach)
        # WATCH makes the compare-and-set safe against a concurrent writer (a rebuild beside us).
        with self.r.pipeline(transaction=True) as pipe:
            while True:
                try:
                    pipe.watch(key)
                    held = pipe.hget(key, figure)
                    if held is not None and _order(json.loads(held)) >= _order(breach):
                        pipe.unwatch()
                        return
                    pipe.multi()
                    pipe.hset(key, figure, body)
                    pipe.execute()
                    return
                except redis.WatchError:
                    continue

    def timeline(self, deployment: str, limit: int = BREACHES_KEPT) -> list[dict[str, Any]]:
        """The newest transitions of a deployment, oldest first."""
        ids = self.r.zrange(self._k("timeline", deployment), -limit, -1)
        if not ids:
            return []
        values = self.r.hmget(self._k("record", deployment), ids)
        return [json.loads(v) for v in values if v is not None]

    def current(self, deployment: str) -> list[dict[str, Any]]:
        """The latest transition of every figure of a deployment (firing or resolved)."""
        values = self.r.hvals(self._k("current", deployment))
        return sorted((json.loads(v) for v in values), key=figure_of)

    def firing(self, deployment: str) -> list[dict[str, Any]]:
        """Figures whose latest transition is `firing`."""
        return [b for b in self.current(deployment) if b["status"] == "firing"]

    def count(self) -> int:
        """Transitions held across every deployment."""
        deps = self.r.smembers(self._k("deployments"))
        return sum(self.r.zcard(self._k("timeline", d.decode())) for d in deps)
