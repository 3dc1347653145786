"""Label matchers, silences with expiry, and acknowledgements."""

import itertools
import json

import pytest

from services.alerting.matchers import Matcher, MatcherError
from services.alerting.silences import SilenceError, Silences

pytestmark = pytest.mark.unit

LABELS = {"deployment": "fraud-eu", "kind": "accuracy", "severity": "critical"}
FP = "0123456789abcdef"


@pytest.mark.parametrize(
    ("spelling", "expected"),
    [
        ('deployment="fraud-eu"', True),
        ('deployment="fraud"', False),
        ('deployment!="fraud"', True),
        ('deployment=~"fraud-.*"', True),
        ('deployment=~"fraud"', False),  # anchored at both ends, as in Alertmanager
        ('deployment!~"churn|fraud"', True),
        ('kind=~"accuracy|data_drift"', True),
        ('team=""', True),  # a missing label matches as the empty string
        ('team!=""', False),
        ("severity=critical", True),  # quotes optional for simple values
        (' severity = "critical" ', True),
        ('comment="say \\"hi\\""', False),
    ],
)
def test_matchers(spelling: str, expected: bool) -> None:
    m = Matcher.parse(spelling)
    assert m.matches(LABELS) is expected
    assert Matcher.parse(str(m)) == m  # str() spells it back


@pytest.mark.parametrize("bad", ['9x="a"', 'a=~"("', "a", 'a=="b"', '="b"', 'a<>"b"'])
def test_bad_matchers_are_refused(bad: str) -> None:
    with pytest.raises(MatcherError):
        Matcher.parse(bad)


def silences() -> Silences:
    counter = itertools.count(1)
    return Silences(new_id=lambda: f"s{next(counter)}")


def test_silence_mutes_only_while_active_and_only_matching_labels() -> None:
    s = silences()
    silence = s.add(['deployment=~"fraud.*"', 'severity="critical"'], 100, 200, "ana", "deploy", 50)
    assert silence.id == "s1"
    assert not s.is_silenced(LABELS, 99)  # pending
    assert s.is_silenced(LABELS, 100)
    assert s.is_silenced(LABELS, 199.9)
    assert not s.is_silenced(LABELS, 200)  # expired at ends_at
    assert not s.is_silenced(LABELS | {"severity": "warning"}, 150)
    assert s.silenced_by(LABELS, 150) == ["s1"]
    assert [x.status(t) for x in [silence] for t in (0, 150, 250)] == [
        "pending",
        "active",
        "expired",
    ]


def test_expire_ends_a_silence_now() -> None:
    s = silences()
    s.add(['deployment="fraud-eu"'], 0, 1000, "ana", "", 0)
    assert s.is_silenced(LABELS, 10)
    ended = s.expire("s1", 20)
    assert ended.ends_at == 20 and not s.is_silenced(LABELS, 21)
    assert [x.id for x in s.list_silences(21)] == []
    assert [x.id for x in s.list_silences(21, include_expired=True)] == ["s1"]
    with pytest.raises(SilenceError):
        s.expire("s1", 22)
    with pytest.raises(KeyError):
        s.expire("nope", 22)


def test_expiring_a_pending_silence_means_it_never_mutes() -> None:
    s = silences()
    s.add(['kind="accuracy"'], 100, 200, "ana", "", 0)
    s.expire("s1", 50)
    assert not any(s.is_silenced(LABELS, t) for t in (50, 100, 150))


@pytest.mark.parametrize(
    ("matchers", "start", "end", "by"),
    [
        ([], 0, 100, "ana"),
        (['team=""'], 0, 100, "ana"),  # would mute everything
        (['team=~".*"'], 0, 100, "ana"),
        (['kind="accuracy"'], 100, 50, "ana"),  # ends before it starts
        (['kind="accuracy"'], 0, 5, "ana"),  # already over at now=10
        (['kind="accuracy"'], 0, 100, " "),  # nobody
        (['kind=~"("'], 0, 100, "ana"),
    ],
)
def test_invalid_silences_are_refused(matchers: list, start: float, end: float, by: str) -> None:
    with pytest.raises(SilenceError):
        silences().add(matchers, start, end, by, "", now=10)


def test_gc_forgets_long_expired_silences() -> None:
    s = silences()
    s.add(['kind="accuracy"'], 0, 100, "ana", "", 0)
    s.add(['kind="accuracy"'], 0, 10_000, "ana", "", 0)
    assert s.gc(now=100 + 86_400 + 1) == 1
    assert [x.id for x in s.list_silences(0, include_expired=True)] == ["s2"]


def test_ack_holds_until_resolved() -> None:
    s = silences()
    assert not s.is_acked(FP, 0)
    s.ack(FP, "ana", "looking", 5)
    assert s.is_acked(FP, 6)
    s.on_resolved(FP)
    assert not s.is_acked(FP, 7)
    with pytest.raises(SilenceError):
        s.ack("not-a-fingerprint", "ana", "", 5)


def test_state_round_trip() -> None:
    s = silences()
    s.add(['deployment=~"fraud.*"'], 0, 100, "ana", "maintenance", 0)
    s.add(['kind="data_drift"'], 10, 50, "bo", "", 0)
    s.expire("s2", 20)
    s.ack(FP, "ana", "", 3)
    back = Silences.from_state(json.loads(json.dumps(s.state())))
    assert back.state() == s.state()
    assert back.is_silenced(LABELS, 30) and back.is_acked(FP, 30)
