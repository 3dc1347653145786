"""R13 timelines with a fake clock: dedup, waits, repeats, exactly one resolved, restarts."""

import dataclasses
import json

import pytest

from services.alerting.alert import Alert, alert_from_breach
from services.alerting.grouping import Grouper, Notification

pytestmark = pytest.mark.unit


@dataclasses.dataclass(frozen=True)
class Route:
    key: str = "{}"
    receiver: str = "ops"
    group_by: tuple[str, ...] = ("deployment",)
    group_wait: float = 30.0
    group_interval: float = 300.0
    repeat_interval: float = 3600.0


def breach(t: float, status: str = "firing", feature: str | None = "age", **kw: object) -> dict:
    base = {
        "breach_id": f"b-{t}",
        "deployment": "fraud",
        "kind": "data_drift",
        "metric": "psi",
        "feature": feature,
        "severity": "warning",
        "status": status,
        "value": 0.31,
        "threshold": 0.2,
        "window_start": int(t * 1000) - 60_000,
        "window_end": int(t * 1000),
        "model_id": "sha256:abc",
        "model_version": 3,
        "observed_at": int(t * 1000),
        "labels": {"team": "risk"},
    }
    return base | kw


def alert(t: float, status: str = "firing", **kw: object) -> Alert:
    return alert_from_breach(breach(t, status, **kw))


class Suppress:
    def __init__(self) -> None:
        self.silenced: set[str] = set()
        self.acked: set[str] = set()

    def is_silenced(self, labels: dict, now: float) -> bool:
        return labels.get("feature", "") in self.silenced

    def is_acked(self, fingerprint: str, now: float) -> bool:
        return fingerprint in self.acked


def run(
    grouper: Grouper,
    until: float,
    step: float = 1.0,
    suppress: Suppress | None = None,
    start: float = 0.0,
) -> list[Notification]:
    """Tick the clock from start to until (inclusive), collecting notifications."""
    out, t = [], start
    while t <= until:
        out.extend(grouper.due(t, suppress))
        t += step
    return out


T0 = 1_700_000_000.0


def test_hundred_breaches_in_ten_seconds_make_one_notification() -> None:
    g = Grouper(Route())
    changed = [g.ingest(alert(T0 + i / 10), T0 + i / 10) for i in range(100)]
    assert changed.count(True) == 1
    notes = run(g, T0 + 299, start=T0)
    assert len(notes) == 1
    (note,) = notes
    assert note.created_at == T0 + 30  # group_wait after the first breach
    assert note.status == "firing" and len(note.alerts) == 1
    assert note.alerts[0].starts_at == T0  # the incident's start, not the latest breach
    assert note.alerts[0].streamops["observed_at"] == int((T0 + 9.9) * 1000)  # latest figures


def test_group_wait_gathers_alerts_of_one_deployment_into_one_notification() -> None:
    g = Grouper(Route())
    g.ingest(alert(T0, feature="age"), T0)
    g.ingest(alert(T0 + 5, feature="income"), T0 + 5)
    g.ingest(alert(T0 + 6, deployment="churn"), T0 + 6)
    notes = run(g, T0 + 60, start=T0)
    assert [(n.group_labels["deployment"], len(n.alerts)) for n in notes] == [
        ("fraud", 2),
        ("churn", 1),
    ]


def test_repeats_only_after_repeat_interval() -> None:
    g = Grouper(Route(group_wait=0, group_interval=60, repeat_interval=600))
    g.ingest(alert(T0), T0)
    notes = []
    for t in range(0, 1900, 5):  # the breach keeps firing every 5 s
        g.ingest(alert(T0 + t), T0 + t)
        notes.extend(g.due(T0 + t))
    times = [n.created_at - T0 for n in notes]
    assert times[0] == 0
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    assert len(times) == 4 and all(600 <= gap <= 660 for gap in gaps), times
    assert len({n.id for n in notes}) == 4  # each notification its own webhook id


def test_changed_group_waits_group_interval_after_the_last_notification() -> None:
    g = Grouper(Route(group_wait=10, group_interval=300))
    g.ingest(alert(T0, feature="a"), T0)
    first = run(g, T0 + 20, start=T0)
    g.ingest(alert(T0 + 21, feature="b"), T0 + 21)
    later = run(g, T0 + 400, start=T0 + 21)
    assert [n.created_at - T0 for n in first] == [10]
    assert [n.created_at - T0 for n in later] == [310]
    assert len(later[0].alerts) == 2


def test_exactly_one_resolved_notification_then_the_group_is_forgotten() -> None:
    g = Grouper(Route(group_wait=0, group_interval=60, repeat_interval=600))
    g.ingest(alert(T0), T0)
    assert len(g.due(T0)) == 1
    for i in range(20):  # resolution reported many times (replays, several windows)
        g.ingest(alert(T0 + 30 + i, "resolved"), T0 + 30 + i)
    notes = run(g, T0 + 5000, step=10, start=T0 + 10)
    assert [n.status for n in notes] == ["resolved"]
    assert notes[0].alerts[0].ends_at == T0 + 30
    assert notes[0].alerts[0].starts_at == T0
    assert g.groups() == [] and g.next_due() is None


def test_fired_and_resolved_within_group_wait_sends_nothing() -> None:
    g = Grouper(Route(group_wait=30))
    g.ingest(alert(T0), T0)
    g.ingest(alert(T0 + 10, "resolved"), T0 + 10)
    assert run(g, T0 + 4000, start=T0) == []


def test_partial_resolution_notifies_once_with_both_states() -> None:
    g = Grouper(Route(group_wait=0, group_interval=60))
    g.ingest(alert(T0, feature="a"), T0)
    g.ingest(alert(T0, feature="b"), T0)
    g.due(T0)
    g.ingest(alert(T0 + 5, "resolved", feature="a"), T0 + 5)
    notes = run(g, T0 + 500, start=T0 + 1)
    assert len(notes) == 1
    assert [(a.labels["feature"], a.status) for a in notes[0].alerts] == [
        ("b", "firing"),
        ("a", "resolved"),
    ]
    assert notes[0].status == "firing"


def test_flapping_within_group_interval_does_not_storm() -> None:
    g = Grouper(Route(group_wait=0, group_interval=60, repeat_interval=3600))
    g.ingest(alert(T0), T0)
    notes = g.due(T0)
    for i in range(1, 59):  # flips every second between ticks
        g.ingest(alert(T0 + i, "resolved" if i % 2 else "firing"), T0 + i)
    g.ingest(alert(T0 + 59.5), T0 + 59.5)
    notes += run(g, T0 + 3000, start=T0 + 1)
    assert [n.status for n in notes] == ["firing"]


def test_flapping_across_intervals_is_paced_by_group_interval() -> None:
    g = Grouper(Route(group_wait=0, group_interval=60, repeat_interval=3600))
    notes = []
    for t in range(0, 1200):  # 30 s firing, 30 s resolved, for 20 minutes
        g.ingest(alert(T0 + t, "firing" if (t // 30) % 2 == 0 else "resolved"), T0 + t)
        notes.extend(g.due(T0 + t))
    times = [n.created_at for n in notes]
    assert all(b - a >= 60 for a, b in zip(times, times[1:], strict=False)), times
    assert len(notes) <= 1200 // 60 + 1


def test_replayed_old_firing_after_resolution_does_not_reopen() -> None:
    g = Grouper(Route(group_wait=0, group_interval=60))
    g.ingest(alert(T0), T0)
    g.due(T0)
    g.ingest(alert(T0 + 10, "resolved"), T0 + 10)
    assert [n.status for n in g.due(T0 + 60)] == ["resolved"]
    assert not g.ingest(alert(T0 + 5), T0 + 70)  # redelivered from Kafka after a crash
    assert run(g, T0 + 1000, start=T0 + 70) == []
    assert g.ingest(alert(T0 + 80), T0 + 80)  # a genuinely new firing is accepted


def test_out_of_order_resolution_before_firing_is_ignored() -> None:
    g = Grouper(Route(group_wait=0))
    g.ingest(alert(T0 + 10), T0 + 10)
    assert not g.ingest(alert(T0 + 5, "resolved"), T0 + 11)
    assert [n.status for n in g.due(T0 + 11)] == ["firing"]


def test_state_round_trip_mid_group_changes_nothing() -> None:
    route = Route(group_wait=30, group_interval=60, repeat_interval=600)
    straight, restarted = Grouper(route), Grouper(route)
    timeline = [(T0 + i, alert(T0 + i, feature=f"f{(i // 3) % 3}")) for i in range(0, 90, 3)]
    timeline += [(T0 + 700, alert(T0 + 700, "resolved", feature="f0"))]
    timeline += [(T0 + 1500 + i, alert(T0 + 1500 + i, "resolved", feature=f"f{i}")) for i in (1, 2)]

    def drive(g: Grouper, restart_at: set[float]) -> list[dict]:
        out, events = [], list(timeline)
        for t in range(0, 2000):
            now = T0 + t
            while events and events[0][0] <= now:
                g.ingest(events.pop(0)[1], now)
            out.extend(n.to_dict() for n in g.due(now))
            if t in restart_at:
                g = Grouper.from_state(route, json.loads(json.dumps(g.state())))
        return out

    a = drive(straight, set())
    b = drive(restarted, {10, 31, 45, 650, 701, 1501})
    assert a == b
    assert [(n["status"], n["created_at"] - T0, len(n["alerts"])) for n in a] == [
        ("firing", 30, 3),  # group_wait
        ("firing", 630, 3),  # repeat_interval
        ("firing", 750, 3),  # f0 resolved: told at the next group_interval tick
        ("firing", 1350, 2),  # repeat
        ("resolved", 1530, 2),  # the rest resolved: exactly one resolved notification
    ]


def test_notification_round_trips_through_json() -> None:
    g = Grouper(Route(group_wait=0))
    g.ingest(alert(T0), T0)
    (note,) = g.due(T0)
    assert Notification.from_dict(json.loads(json.dumps(note.to_dict()))) == note


def test_state_of_another_route_is_refused() -> None:
    state = Grouper(Route(key="{}/0")).state()
    with pytest.raises(ValueError):
        Grouper.from_state(Route(key="{}/1"), state)


def test_silenced_alert_is_not_sent_and_is_sent_after_the_silence_if_still_firing() -> None:
    g = Grouper(Route(group_wait=0, group_interval=60))
    s = Suppress()
    s.silenced.add("age")
    g.ingest(alert(T0), T0)
    assert run(g, T0 + 600, step=10, suppress=s, start=T0) == []
    s.silenced.clear()
    notes = run(g, T0 + 700, step=10, suppress=s, start=T0 + 610)
    assert [n.status for n in notes] == ["firing"]
    assert notes[0].created_at == T0 + 660  # at the group's next tick after the silence ended


def test_resolution_of_a_silenced_alert_is_not_sent() -> None:
    g = Grouper(Route(group_wait=0, group_interval=60))
    s = Suppress()
    s.silenced.add("age")
    g.ingest(alert(T0), T0)
    g.ingest(alert(T0 + 10, "resolved"), T0 + 10)
    assert run(g, T0 + 600, step=10, suppress=s, start=T0) == []


def test_ack_suppresses_repeats_but_not_changes() -> None:
    g = Grouper(Route(group_wait=0, group_interval=60, repeat_interval=600))
    s = Suppress()
    a = alert(T0, feature="a")
    g.ingest(a, T0)
    assert len(g.due(T0, s)) == 1
    s.acked.add(a.fingerprint)
    assert run(g, T0 + 3000, step=60, suppress=s, start=T0 + 60) == []
    g.ingest(alert(T0 + 3001, feature="b"), T0 + 3001)
    assert len(run(g, T0 + 3100, step=60, suppress=s, start=T0 + 3060)) == 1
    g.ingest(alert(T0 + 3200, "resolved", feature="a"), T0 + 3200)
    notes = run(g, T0 + 3300, step=60, suppress=s, start=T0 + 3180)
    assert [(x.labels["feature"], x.status) for x in notes[0].alerts] == [
        ("b", "firing"),
        ("a", "resolved"),
    ]


def test_group_by_all_labels() -> None:
    g = Grouper(Route(group_by=("...",), group_wait=0))
    g.ingest(alert(T0, feature="a"), T0)
    g.ingest(alert(T0, feature="b"), T0)
    assert len(g.due(T0)) == 2
