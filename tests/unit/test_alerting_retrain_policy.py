"""Retrain policy: K consecutive breached windows give one request per deployment at a time."""

import doctest
import json

import pytest

from services.alerting import retrain_policy
from services.alerting.retrain_policy import RetrainConfig, RetrainPolicy, Triggers

pytestmark = pytest.mark.unit

MINUTE = 60_000


def breach(window: int, status: str = "firing", **kw: object) -> dict:
    """The breach for the `window`-th one-minute tumbling window."""
    base = {
        "breach_id": f"b{window}-{kw.get('feature', 'age')}-{status}",
        "deployment": "fraud",
        "kind": "data_drift",
        "metric": "psi",
        "feature": "age",
        "severity": "warning",
        "status": status,
        "value": 0.4,
        "threshold": 0.2,
        "window_start": window * MINUTE,
        "window_end": (window + 1) * MINUTE,
        "model_id": "sha256:m3",
        "model_version": 3,
        "observed_at": (window + 1) * MINUTE + 500,
        "labels": {},
    }
    return base | kw


def feed(policy: RetrainPolicy, breaches: list[dict]) -> list:
    return [r for i, b in enumerate(breaches) if (r := policy.observe(b, now=float(i)))]


def test_k_consecutive_windows_produce_one_request() -> None:
    policy = RetrainPolicy(RetrainConfig(after_windows=3))
    requests = feed(policy, [breach(w) for w in range(10)])
    assert len(requests) == 1
    (r,) = requests
    assert (r.deployment, r.windows, r.window_start, r.window_end) == ("fraud", 3, 0, 3 * MINUTE)
    assert r.breach_ids == ("b0-age-firing", "b1-age-firing", "b2-age-firing")
    assert (r.model_id, r.model_version, r.kind) == ("sha256:m3", 3, "data_drift")
    assert policy.in_flight("fraud") == r.request_id


def test_a_gap_or_a_resolution_restarts_the_count() -> None:
    policy = RetrainPolicy(RetrainConfig(after_windows=3))
    assert feed(policy, [breach(0), breach(1), breach(3), breach(4)]) == []  # gap at 2
    assert feed(policy, [breach(5, "resolved"), breach(6), breach(7)]) == []
    assert len(feed(policy, [breach(8)])) == 1


def test_repeated_messages_for_one_window_count_once() -> None:
    policy = RetrainPolicy(RetrainConfig(after_windows=3))
    replayed = [breach(0), breach(0), breach(1), breach(1), breach(0), breach(1)]
    assert feed(policy, replayed) == []
    assert len(feed(policy, [breach(2)])) == 1


def test_several_features_of_one_deployment_make_one_request() -> None:
    policy = RetrainPolicy(RetrainConfig(after_windows=2))
    stream = [breach(w, feature=f) for w in range(5) for f in ("age", "income", "city")]
    assert len(feed(policy, stream)) == 1


def test_other_deployments_are_independent() -> None:
    policy = RetrainPolicy(RetrainConfig(after_windows=2))
    stream = [breach(w, deployment=d) for w in range(3) for d in ("fraud", "churn")]
    assert sorted(r.deployment for r in feed(policy, stream)) == ["churn", "fraud"]


def test_no_second_request_until_completed_then_a_fresh_run_of_k() -> None:
    policy = RetrainPolicy(RetrainConfig(after_windows=2))
    assert len(feed(policy, [breach(w) for w in range(6)])) == 1
    policy.completed("fraud")
    assert policy.in_flight("fraud") is None
    assert feed(policy, [breach(6)]) == []  # the count starts over after completion
    (again,) = feed(policy, [breach(7)])
    assert again.window_start == 6 * MINUTE and again.windows == 2


@pytest.mark.parametrize("kind", ["prediction_drift", "data_quality", "health"])
def test_other_kinds_never_trigger(kind: str) -> None:
    policy = RetrainPolicy(RetrainConfig(after_windows=1))
    assert feed(policy, [breach(w, kind=kind) for w in range(5)]) == []


def test_accuracy_triggers_and_configured_kinds_are_respected() -> None:
    assert feed(RetrainPolicy(RetrainConfig(after_windows=1)), [breach(0, kind="accuracy")])
    only_accuracy = RetrainPolicy(RetrainConfig(after_windows=1, kinds=frozenset({"accuracy"})))
    assert feed(only_accuracy, [breach(0)]) == []


def test_sliding_windows_that_overlap_count_as_consecutive() -> None:
    policy = RetrainPolicy(RetrainConfig(after_windows=3))
    half = MINUTE // 2
    stream = [breach(0, window_start=i * half, window_end=i * half + MINUTE) for i in range(3)]
    assert len(feed(policy, stream)) == 1


def test_state_round_trip_mid_streak_and_in_flight() -> None:
    config = RetrainConfig(after_windows=3)
    a = RetrainPolicy(config)
    feed(a, [breach(0), breach(1)])
    b = RetrainPolicy.from_state(config, json.loads(json.dumps(a.state())))
    assert feed(b, [breach(1)]) == []  # replay after restart is not double counted
    assert len(feed(b, [breach(2)])) == 1
    c = RetrainPolicy.from_state(config, json.loads(json.dumps(b.state())))
    assert feed(c, [breach(3), breach(4), breach(5)]) == []  # still in flight after restart
    assert c.in_flight("fraud") is not None


def test_request_is_json_able_and_id_is_deterministic() -> None:
    one = feed(RetrainPolicy(RetrainConfig(after_windows=2)), [breach(0), breach(1)])[0]
    two = feed(RetrainPolicy(RetrainConfig(after_windows=2)), [breach(0), breach(1)])[0]
    assert one.request_id == two.request_id
    assert json.loads(json.dumps(one.to_dict()))["breach_ids"] == list(one.breach_ids)


def test_count_windows_with_small_gaps_between_them_are_consecutive() -> None:
    policy = RetrainPolicy(RetrainConfig(after_windows=3))
    got = []
    for w in range(3):  # 20 s windows whose next one starts 10 ms after the last event
        start = 1_000_000 + w * 20_010
        got.append(
            policy.observe({**breach(w), "window_start": start, "window_end": start + 20_000}, 0.0)
        )
    assert [g is not None for g in got] == [False, False, True]


# -- the deployment's own triggers (policy.retrain_after_windows, release.retrain_on) ----------


def deployment(k: int = 3, release: dict | None = None, name: str = "fraud") -> dict:
    """The parts of a Deployment record the retrain policy reads."""
    return {
        "name": name,
        "champion": {"model_name": "m", "model_id": "sha256:m3", "version": 3},
        "policy": {"auto_approve": False, "retrain_after_windows": k, "review_topic": None},
        "release": release,
    }


def configured(config: RetrainConfig, *deployments: dict) -> RetrainPolicy:
    policy = RetrainPolicy(config)
    for d in deployments:
        triggers = Triggers.from_deployment(d)
        assert triggers is not None
        policy.configure(d["name"], triggers)
    return policy


def change_point(window: int) -> dict:
    """drift's breach of a `change_point` threshold: kind accuracy, no feature."""
    return breach(window, kind="accuracy", metric="change_point", feature=None, value=1.0)


def test_the_deployments_k_wins_over_the_config() -> None:
    policy = configured(RetrainConfig(after_windows=3), deployment(k=2))
    stream = [breach(w, deployment=d) for w in range(3) for d in ("fraud", "churn")]
    got = [(i // 2, r) for i, b in enumerate(stream) if (r := policy.observe(b, now=float(i)))]
    assert [(window, r.deployment, r.windows) for window, r in got] == [
        (1, "fraud", 2),  # its Deployment says 2
        (2, "churn", 3),  # never seen: alerting's config says 3
    ]
    fraud, churn = (r for _w, r in got)
    assert fraud.reason == (
        "data_drift psi on age breached for 2 windows (K=2, policy.retrain_after_windows)"
    )
    assert churn.reason == "data_drift psi on age breached for 3 windows (K=3, alerting's config)"
    assert fraud.breach_ids == ("b0-age-firing", "b1-age-firing")


def test_retrain_on_change_point_asks_on_change_points_only() -> None:
    release = {"action": "shadow", "retrain_on": ["change_point"]}
    policy = configured(RetrainConfig(after_windows=3), deployment(k=2, release=release))
    ignored = [breach(w) for w in range(5)]  # psi: data drift, a default kind
    ignored += [breach(w, kind="accuracy", metric="accuracy", feature=None) for w in range(5)]
    assert feed(policy, ignored) == []
    (request,) = feed(policy, [change_point(w) for w in range(5)])
    assert (request.kind, request.metric, request.feature) == ("accuracy", "change_point", None)
    assert request.window_end == 2 * MINUTE and request.windows == 2
    assert request.reason == (
        "accuracy change_point breached for 2 windows (K=2, policy.retrain_after_windows)"
    )


def test_retrain_on_a_kind_counts_a_kind_the_default_kinds_ignore() -> None:
    quality = [breach(w, kind="data_quality", metric="missing_rate") for w in range(3)]
    assert feed(RetrainPolicy(RetrainConfig(after_windows=3)), quality) == []
    release = {"retrain_on": ["data_quality"]}
    policy = configured(RetrainConfig(after_windows=3), deployment(release=release))
    (request,) = feed(policy, quality)
    assert (request.kind, request.metric, request.windows) == ("data_quality", "missing_rate", 3)
    policy.completed("fraud")
    assert feed(policy, [breach(w) for w in range(3, 10)]) == []  # data drift no longer counts


def test_a_changed_deployment_takes_effect_at_the_next_breach() -> None:
    policy = configured(RetrainConfig(after_windows=3), deployment(k=3))
    assert feed(policy, [breach(0), breach(1)]) == []
    assert policy.configure("fraud", Triggers.from_deployment(deployment(k=1)))
    assert not policy.configure("fraud", Triggers.from_deployment(deployment(k=1)))  # no change
    (request,) = feed(policy, [breach(2)])
    assert (request.windows, request.after_windows, request.window_start) == (3, 1, 0)
    assert request.breach_ids == ("b2-age-firing",)
    policy.completed("fraud")
    (again,) = feed(policy, [breach(3)])  # a fresh run of the new K
    assert (again.windows, again.window_start) == (1, 3 * MINUTE)


def test_state_round_trip_keeps_each_deployments_triggers() -> None:
    config = RetrainConfig(after_windows=3)
    release = {"retrain_on": ["change_point", "data_quality"]}
    a = configured(config, deployment(k=2, release=release), deployment(k=5, name="churn"))
    feed(a, [change_point(0)])
    b = RetrainPolicy.from_state(config, json.loads(json.dumps(a.state())))
    assert b.triggers("fraud") == Triggers(2, frozenset({"change_point", "data_quality"}))
    assert b.triggers("churn") == Triggers(5) and b.triggers("credit") is None
    assert feed(b, [breach(1)]) == []  # psi is not in fraud's retrain_on
    (request,) = feed(b, [change_point(1)])
    assert request.windows == 2 and request.from_deployment
    old = {k: v for k, v in a.state().items() if k != "triggers"}  # saved before triggers
    assert RetrainPolicy.from_state(config, old).triggers("fraud") is None


def test_triggers_are_bounded_oldest_change_first(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(retrain_policy, "MAX_DEPLOYMENTS", 2)
    policy = configured(RetrainConfig(), *(deployment(k=2, name=n) for n in ("a", "b")))
    policy.configure("a", Triggers(4))  # a changed: now the newest
    policy.configure("c", Triggers(5))
    assert [policy.triggers(n) for n in ("a", "b", "c")] == [Triggers(4), None, Triggers(5)]


@pytest.mark.parametrize("release", [None, {"action": "shadow", "retrain_on": []}])
def test_a_deployment_without_retrain_on_behaves_as_today(release: dict | None) -> None:
    config = RetrainConfig(after_windows=3)
    stream = [breach(w, kind=k) for w in range(4) for k in ("prediction_drift", "data_drift")]
    stream += [breach(w, kind="accuracy", metric="accuracy", feature=None) for w in range(4)]
    today = feed(RetrainPolicy(config), stream)
    seen = feed(configured(config, deployment(k=3, release=release)), stream)
    strip = ("from_deployment", "requested_at")
    assert [{k: v for k, v in r.to_dict().items() if k not in strip} for r in seen] == [
        {k: v for k, v in r.to_dict().items() if k not in strip} for r in today
    ]
    assert len(seen) == 1 and seen[0].kind == "data_drift" and seen[0].from_deployment


def test_a_deployment_without_a_policy_sets_no_triggers() -> None:
    assert Triggers.from_deployment({"name": "fraud", "champion": None}) is None
    assert Triggers.from_deployment(deployment(k=0)) == Triggers(1)  # never "fire on anything"


def test_doctests() -> None:
    assert doctest.testmod(retrain_policy).failed == 0
