"""Alertmanager-style aggregation groups as a pure, serialisable state machine.

Alerts are grouped by the route's `group_by` labels. A new group's first notification waits
`group_wait`; after that a group is looked at every `group_interval` and notifies only when its
firing set grew or a firing alert the receiver knew about resolved, or when `repeat_interval`
passed since the last notification. The same fingerprint arriving again is the same alert, so a
hundred identical breaches make one notification. Resolved alerts leave the group once flushed;
an emptied group is forgotten, but its last notification time and the fingerprints it resolved
are kept a while so a replayed (older) breach cannot re-open it and a re-opened group still waits
out `group_interval`. Time is passed in; `state()`/`from_state()` are plain JSON.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping
from typing import Any, Protocol

from services.alerting.alert import Alert

STATE_VERSION = 1
MAX_TOMBSTONES = 10_000


class GroupingRoute(Protocol):
    """What grouping needs from a route: its identity, receiver and timers (seconds)."""

    @property
    def key(self) -> str:
        """Identifies the route; the prefix of its group keys."""
        ...

    @property
    def receiver(self) -> str:
        """The receiver notifications go to."""
        ...

    @property
    def group_by(self) -> tuple[str, ...]:
        """Labels that split alerts into groups ("..." for all)."""
        ...

    @property
    def group_wait(self) -> float:
        """Seconds a new group waits before its first notification."""
        ...

    @property
    def group_interval(self) -> float:
        """Seconds between looks at a group after its first notification."""
        ...

    @property
    def repeat_interval(self) -> float:
        """Seconds before an unchanged firing group is notified again."""
        ...


class Suppressor(Protocol):
    """Silences and acknowledgements, as grouping consults them when flushing."""

    def is_silenced(self, labels: Mapping[str, str], now: float) -> bool:
        """True when a silence covers these labels at `now`."""
        ...

    def is_acked(self, fingerprint: str, now: float) -> bool:
        """True when this firing alert was acknowledged, so repeats are suppressed."""
        ...


@dataclasses.dataclass(frozen=True)
class Notification:
    """One message to one receiver about one group; `id` is the webhook id, stable on retry."""

    id: str
    group_key: str
    receiver: str
    group_labels: dict[str, str]
    status: str
    alerts: tuple[Alert, ...]
    created_at: float

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able form, for the delivery outbox."""
        return {**dataclasses.asdict(self), "alerts": [a.to_dict() for a in self.alerts]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Notification:
        """Inverse of `to_dict`."""
        fields = {f.name: data[f.name] for f in dataclasses.fields(cls)}
        fields["alerts"] = tuple(Alert.from_dict(a) for a in data["alerts"])
        return cls(**fields)


@dataclasses.dataclass
class _Group:
    """One aggregation group and what its receiver was last told."""

    key: str
    labels: dict[str, str]
    alerts: dict[str, Alert]
    created_at: float
    next_flush: float
    last_notified_at: float | None = None
    notified_firing: list[str] = dataclasses.field(default_factory=list)
    seq: int = 0


# _Group fields copied as they are into the state (the rest are containers, copied explicitly;
# dataclasses.asdict would deep-copy every alert on every save).
_GROUP_SCALARS = ("key", "created_at", "next_flush", "last_notified_at", "seq")


def group_key(route_key: str, labels: Mapping[str, str]) -> str:
    """Alertmanager's spelling: `<route key>:{name="value",...}`."""
    inner = ",".join(f"{k}={json.dumps(labels[k])}" for k in sorted(labels))
    return f"{route_key}:{{{inner}}}"


class Grouper:
    """Groups, dedups and times notifications for one route."""

    def __init__(self, route: GroupingRoute) -> None:
        self.route = route
        self._groups: dict[str, _Group] = {}
        # fingerprint -> ends_at of a resolved alert already flushed: older firings are replays.
        self._tombstones: dict[str, float] = {}
        # group key -> time of the last notification of a group since forgotten.
        self._recent: dict[str, float] = {}

    def _group_labels(self, labels: Mapping[str, str]) -> dict[str, str]:
        if "..." in self.route.group_by:
            return dict(labels)
        return {k: labels[k] for k in self.route.group_by if k in labels}

    def ingest(self, alert: Alert, now: float) -> bool:
        """Add or update one alert; True when it changed what the group would notify."""
        labels = self._group_labels(alert.labels)
        key = group_key(self.route.key, labels)
        group = self._groups.get(key)
        old = group.alerts.get(alert.fingerprint) if group else None
        if old is None:
            if not alert.firing:
                return False  # a resolution of something never seen (or already flushed)
            if alert.starts_at <= self._tombstones.get(alert.fingerprint, float("-inf")):
                return False  # replay of a firing that has since been resolved and notified
            if group is None:
                first = now + self.route.group_wait
                after_last = self._recent.pop(key, float("-inf")) + self.route.group_interval
                group = _Group(key, labels, {}, now, max(first, after_last))
                self._groups[key] = group
            group.alerts[alert.fingerprint] = alert
            return True
        newer = _observed(alert) >= _observed(old)
        if not newer:
            return False  # out-of-order: an older breach never overrides a newer one
        if old.firing and alert.firing:
            # Same alert again: refresh the figures, keep the incident's start. Not a change.
            group.alerts[alert.fingerprint] = dataclasses.replace(alert, starts_at=old.starts_at)
            return False
        if old.firing and not alert.firing:
            group.alerts[alert.fingerprint] = dataclasses.replace(alert, starts_at=old.starts_at)
            return True
        if not old.firing and alert.firing:
            # Flapped back before the resolution was flushed: to the receiver it never stopped.
            group.alerts[alert.fingerprint] = dataclasses.replace(alert, starts_at=old.starts_at)
            return True
        return False

    def next_due(self) -> float | None:
        """The earliest time `due` may return something, or None with no groups."""
        return min((g.next_flush for g in self._groups.values()), default=None)

    def due(self, now: float, suppress: Suppressor | None = None) -> list[Notification]:
        """Flush every group whose timer expired; the notifications to send, in key order."""
        out = []
        for key in sorted(self._groups):
            group = self._groups[key]
            if group.next_flush > now:
                continue
            note = self._flush(group, now, suppress)
            group.next_flush = now + self.route.group_interval
            if note is not None:
                out.append(note)
            if not group.alerts:
                if group.last_notified_at is not None:
                    self._recent[key] = group.last_notified_at
                del self._groups[key]
        self._prune(now)
        return out

    def _flush(self, group: _Group, now: float, suppress: Suppressor | None) -> Notification | None:
        known = set(group.notified_firing)
        visible = [
            a
            for a in group.alerts.values()
            if (a.firing and not (suppress and suppress.is_silenced(a.labels, now)))
            or (not a.firing and a.fingerprint in known)
        ]
        firing = {a.fingerprint for a in visible if a.firing}
        resolved = {a.fingerprint for a in visible if not a.firing}
        if group.last_notified_at is None:
            send = bool(firing)
        elif not firing <= known or resolved:
            send = True  # something new fires, or something the receiver knew about resolved
        else:
            repeat = now >= group.last_notified_at + self.route.repeat_interval
            acked = suppress is not None and all(suppress.is_acked(fp, now) for fp in firing)
            send = bool(firing) and repeat and not acked
        note = None
        if send:
            note = Notification(
                id=_notification_id(group),
                group_key=group.key,
                receiver=self.route.receiver,
                group_labels=dict(group.labels),
                status="firing" if firing else "resolved",
                alerts=tuple(
                    sorted(visible, key=lambda a: (not a.firing, a.starts_at, a.fingerprint))
                ),
                created_at=now,
            )
            group.seq += 1
            group.last_notified_at = now
            group.notified_firing = sorted(firing)
        # Resolved alerts leave the group once flushed, whether or not the receiver heard of them.
        for fp in [fp for fp, a in group.alerts.items() if not a.firing]:
            self._tombstones[fp] = group.alerts.pop(fp).ends_at or now
        if not send:
            group.notified_firing = sorted(known & {a.fingerprint for a in group.alerts.values()})
        return note

    def _prune(self, now: float) -> None:
        keep_for = max(self.route.repeat_interval, self.route.group_interval, 3600.0)
        self._tombstones = {fp: t for fp, t in self._tombstones.items() if t >= now - keep_for}
        if len(self._tombstones) > MAX_TOMBSTONES:
            newest = sorted(self._tombstones.items(), key=lambda kv: kv[1])[-MAX_TOMBSTONES:]
            self._tombstones = dict(newest)
        self._recent = {
            k: t for k, t in self._recent.items() if t >= now - self.route.group_interval
        }

    def groups(self) -> list[dict[str, Any]]:
        """A read-only summary of the live groups, for the API and the dashboard."""
        return [
            {
                "group_key": g.key,
                "labels": dict(g.labels),
                "alerts": [
                    {
                        "fingerprint": a.fingerprint,
                        "status": a.status,
                        "labels": dict(a.labels),
                        "starts_at": a.starts_at,
                    }
                    for a in g.alerts.values()
                ],
                "firing": sum(a.firing for a in g.alerts.values()),
                "last_notified_at": g.last_notified_at,
                "next_flush": g.next_flush,
            }
            for g in sorted(self._groups.values(), key=lambda g: g.key)
        ]

    def state(self) -> dict[str, Any]:
        """Everything needed to resume after a restart, as plain JSON-able data."""
        return {
            "version": STATE_VERSION,
            "route": self.route.key,
            "groups": [
                {
                    **{f: getattr(g, f) for f in _GROUP_SCALARS},
                    "labels": dict(g.labels),
                    "notified_firing": list(g.notified_firing),
                    "alerts": [a.to_dict() for a in g.alerts.values()],
                }
                for g in self._groups.values()
            ],
            "tombstones": dict(self._tombstones),
            "recent": dict(self._recent),
        }

    @classmethod
    def from_state(cls, route: GroupingRoute, state: Mapping[str, Any]) -> Grouper:
        """Resume from `state()`; ValueError if it belongs to another route or version."""
        if state.get("version") != STATE_VERSION:
            raise ValueError(f"grouping state version {state.get('version')!r} is not supported")
        if state.get("route") != route.key:
            raise ValueError(
                f"grouping state is for route {state.get('route')!r}, not {route.key!r}"
            )
        grouper = cls(route)
        for raw in state["groups"]:
            alerts = [Alert.from_dict(a) for a in raw["alerts"]]
            group = _Group(**{**raw, "alerts": {a.fingerprint: a for a in alerts}})
            grouper._groups[group.key] = group
        grouper._tombstones = {str(k): float(v) for k, v in state["tombstones"].items()}
        grouper._recent = {str(k): float(v) for k, v in state["recent"].items()}
        return grouper


def _observed(alert: Alert) -> float:
    """When the breach behind this alert was observed (epoch s), for ordering updates."""
    observed = alert.streamops.get("observed_at")
    if isinstance(observed, int | float):
        return observed / 1000.0
    return alert.ends_at if alert.ends_at is not None else alert.starts_at


def _notification_id(group: _Group) -> str:
    """Unique per notification, and the same for every retry of it (it is stored, not redone)."""
    raw = f"{group.key}|{group.created_at!r}|{group.seq}"
    return "msg_" + hashlib.sha256(raw.encode()).hexdigest()[:32]
