"""Retrain policy: K consecutive breached windows give one request per deployment at a time."""

import json

import pytest

from services.alerting.retrain_policy import RetrainConfig, RetrainPolicy

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
