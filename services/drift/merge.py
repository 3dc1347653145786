"""One report per window from a group of several drift processes: their partial windows, merged.

A group can run N drift processes (``--shards N``, each with its ``--shard i``). Each reads
partitions ``p % N == i`` of ``events``, ``predictions`` and ``actuals``, which are keyed by
association id and have the same partition count, so an event, its predictions and its actual
meet in the same process and its joins are complete. Each keeps its own state, offsets and
commit counter in Redis (R11 holds per process, by the same code as for one process).

When one of its windows closes, a process writes the window's state as a *part*, in the same
transaction as its offsets, under the group's shared keys (``Shared``):

- ``<shared>:part:<deployment>:<key>``: hash, field ``<shard>|<model id>``, the part's state;
- ``<shared>:parts:<deployment>``: set of the window keys with parts waiting;
- ``<shared>:marks:<deployment>``: hash, field ``<shard>``, the process's mark: every window
  whose key is below it is closed there (``DeploymentMonitor.mark``);
- ``<shared>:clocks:<deployment>``: hash, field ``<shard>``, the latest event time it saw.

Time windows close on the group's clock, as they would in one process: every 0.1 s
each process reads the others' latest event times and moves its own watermark up to theirs
(``GroupClock``), so a window closes everywhere once any process has seen an event past its end
and lateness, even in a process whose partitions have gone quiet.

Process 0 merges. A window is complete once the mark of every process that has one for the
deployment is past its key; a process with no mark has seen none of the deployment's events and
is not waited for. If it then closes a part of a window already merged (its first events of a
deployment came that late), the part is not reported again as a window of its own: its events
are counted as late (``streamops_drift_late_total`` of events) and a warning is logged. The
parts of a complete window are added up (per model id: a window that spans a champion switch
reports once per reference) and evaluated in key order with process 0's threshold state for the
deployment, so hysteresis runs over the merged windows. The reports are published like any
window's; the parts are deleted in process 0's next transaction, with that threshold state. A
crash before it merges them again (reports are at-least-once, as for one process).

What differs from one process: each process runs its own change detector on its own joined
errors (a window shows a change point if any process saw one), count windows hold
``ceil(count / N)`` events per process, and a process that stops seeing a deployment's events
holds its windows back until it sees them again.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import redis

from services.common.errors import RetryableError
from services.drift.aggregate import WindowAggregate
from services.drift.monitor import ClosedWindow, DeploymentMonitor, PartialWindow
from services.drift.reference import Reference

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Shared:
    """The keys a sharded group's processes share (one Redis, no Cluster)."""

    prefix: str  # "<group namespace>:of-<N>"

    def part(self, deployment: str, key: int) -> str:
        return f"{self.prefix}:part:{deployment}:{key}"

    def parts(self, deployment: str) -> str:
        return f"{self.prefix}:parts:{deployment}"

    def marks(self, deployment: str) -> str:
        return f"{self.prefix}:marks:{deployment}"

    def clocks(self, deployment: str) -> str:
        return f"{self.prefix}:clocks:{deployment}"

    def merged(self, deployment: str) -> str:
        return f"{self.prefix}:merged:{deployment}"  # the highest window key merged

    def deployments(self) -> str:
        return f"{self.prefix}:deployments"


@dataclass(frozen=True)
class Merged:
    """A window merged and published, whose parts the next transaction deletes."""

    deployment: str
    key: int


@dataclass(frozen=True)
class SharedWrites:
    """One transaction's writes to the shared keys, as the commit script takes them."""

    parts: list[str]  # 7 arguments a part: part hash, field, state, parts set, key, set, name
    marks: list[str]  # 3 a mark or clock: hash, shard, value
    merged: list[str]  # 4 a merged window: parts set, key, part hash (deleted), highest key

    @classmethod
    def of(
        cls,
        shared: Shared,
        shard: int,
        parts: list[PartialWindow],
        marks: dict[str, tuple[int, int | None]],
        merged: list[Merged],
    ) -> SharedWrites:
        """A process's parts, marks and clocks ((mark, latest event time) by deployment), and
        process 0's merged windows."""
        p: list[str] = []
        for w in parts:
            p += (shared.part(w.deployment, w.key), f"{shard}|{w.model_id}")
            p += (json.dumps(w.state, separators=(",", ":")), shared.parts(w.deployment))
            p += (str(w.key), shared.deployments(), w.deployment)
        m: list[str] = []
        for d, (mark, clock) in marks.items():
            m += (shared.marks(d), str(shard), str(mark))
            if clock is not None:
                m += (shared.clocks(d), str(shard), str(clock))
        done: list[str] = []
        for w in merged:
            done += (shared.parts(w.deployment), str(w.key), shared.part(w.deployment, w.key))
            done.append(shared.merged(w.deployment))
        return cls(p, m, done)


class Every:
    """True at most once per interval (the shared keys are read at that pace, not per batch)."""

    def __init__(self, interval_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval_s, self.clock = interval_s, clock
        self._last = float("-inf")

    def __call__(self) -> bool:
        now = self.clock()
        if now - self._last < self.interval_s:
            return False
        self._last = now
        return True

    def reset(self) -> None:
        self._last = float("-inf")


class GroupClock:
    """Every process's side: the latest event time any process of the group saw."""

    def __init__(self, client: redis.Redis, shared: Shared, every: Every) -> None:
        self.client, self.shared, self.every = client, shared, every

    def times(self, deployments: list[str]) -> dict[str, int]:
        """The group's latest event time per deployment, when due (else empty)."""
        if not deployments or not self.every():
            return {}
        pipe = self.client.pipeline(transaction=False)
        for d in deployments:
            pipe.hvals(self.shared.clocks(d))
        try:
            replies = pipe.execute()
        except redis.RedisError as exc:
            raise RetryableError(f"group clock read failed: {exc}") from exc
        return {d: max(int(v) for v in r) for d, r in zip(deployments, replies, strict=True) if r}


NONE = -(2**62)  # below every window key


def _late(deployment: str, key: int, fields: dict[bytes, bytes]) -> int:
    """The events of parts of a window merged before: logged, counted as late, not reported."""
    events = sum(int(json.loads(raw)["counts"][0]) for raw in fields.values())
    log.warning(
        "deployment %s: a part of window %d came after the window was merged (a process saw "
        "its first events of the deployment late); its %d events count as late",
        deployment,
        key,
        events,
    )
    return events


class Merger:
    """Process 0's side: finds complete windows, merges and evaluates them, in key order."""

    def __init__(
        self,
        client: redis.Redis,
        shared: Shared,
        reference_for: Callable[[str, str], Reference | None],
        every: Every,
    ) -> None:
        self.client, self.shared = client, shared
        self.reference_for = reference_for  # (deployment, model id) -> its reference
        self.every = every
        self._merged: set[tuple[str, int]] = set()  # published, deletion not yet seen
        self._highest: dict[str, int] = {}  # highest key published, by deployment

    def forget(self) -> None:
        """After a reload: what was merged but not committed will be merged again."""
        self._merged.clear()
        self._highest.clear()
        self.every.reset()

    def due(
        self, monitor_for: Callable[[str], DeploymentMonitor | None]
    ) -> tuple[list[ClosedWindow], list[Merged], int]:
        """The complete windows' reports (when due), the windows whose parts to delete, and
        the events of late parts (of windows merged before); ``monitor_for`` gives the
        deployment's monitor, whose thresholds evaluate them."""
        if not self.every():
            return [], [], 0
        try:
            return self._due(monitor_for)
        except redis.RedisError as exc:
            raise RetryableError(f"merge read failed: {exc}") from exc

    def _due(
        self, monitor_for: Callable[[str], DeploymentMonitor | None]
    ) -> tuple[list[ClosedWindow], list[Merged], int]:
        s = self.shared
        names = sorted(d.decode() for d in self.client.smembers(s.deployments()))
        pipe = self.client.pipeline(transaction=False)
        for d in names:
            pipe.hgetall(s.marks(d))
            pipe.smembers(s.parts(d))
            pipe.get(s.merged(d))
        replies = pipe.execute()
        ready: list[tuple[str, int]] = []  # complete windows, and late parts of merged ones
        highest: dict[str, int] = {}  # the highest key merged, by deployment
        for i, d in enumerate(names):
            marks, raw_pending, stored = replies[3 * i : 3 * i + 3]
            pending = {int(k) for k in raw_pending}
            self._merged = {m for m in self._merged if m[0] != d or m[1] in pending}
            highest[d] = max(int(stored) if stored else NONE, self._highest.get(d, NONE))
            low = min((int(v) for v in marks.values()), default=NONE)
            ready += [
                (d, k)
                for k in sorted(pending)
                if (k < low or k <= highest[d]) and (d, k) not in self._merged
            ]
        if not ready:
            return [], [], 0
        pipe = self.client.pipeline(transaction=False)
        for d, k in ready:
            pipe.hgetall(s.part(d, k))
        closed: list[ClosedWindow] = []
        merged: list[Merged] = []
        late = 0
        for (d, k), fields in zip(ready, pipe.execute(), strict=True):
            if k <= highest[d]:
                late += _late(d, k, fields)
            else:
                closed += self._merge(d, k, fields, monitor_for(d))
                highest[d] = self._highest[d] = k
            merged.append(Merged(d, k))
            self._merged.add((d, k))
        return closed, merged, late

    def _merge(
        self,
        deployment: str,
        key: int,
        fields: dict[bytes, bytes],
        monitor: DeploymentMonitor | None,
    ) -> list[ClosedWindow]:
        """One window's parts added up per model id, each evaluated as a window."""
        by_model: dict[str, WindowAggregate] = {}
        for field, raw in sorted(fields.items()):
            model_id = field.decode().partition("|")[2]
            ref = self.reference_for(deployment, model_id)
            if ref is None or monitor is None:
                log.warning(
                    "deployment %s: part of window %d for unknown model %s dropped",
                    deployment,
                    key,
                    model_id[:12],
                )
                continue
            part = WindowAggregate.from_state(ref, json.loads(raw))
            if model_id in by_model:
                by_model[model_id].merge(part)
            else:
                by_model[model_id] = part
        out = []
        for agg in by_model.values():
            agg.seq = key
            out.append(monitor.evaluate(agg))  # type: ignore[union-attr]
        return out
