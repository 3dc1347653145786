"""R12: the retry decision table, backoff with full jitter, Retry-After, and the circuit."""

import email.utils
import random

import httpx
import pytest

from services.alerting.retry_policy import Circuit, CircuitState, Outcome, RetryPolicy, classify
from services.alerting.ssrf import UnsafeDestination
from services.common.errors import RetryableError

pytestmark = pytest.mark.unit

NOW = 1_700_000_000.0


def policy(**kw: object) -> RetryPolicy:
    return RetryPolicy(**({"rng": random.Random(7)} | kw))  # type: ignore[arg-type]


REQUEST = httpx.Request("POST", "https://hooks.example.com/")


@pytest.mark.parametrize(
    ("outcome", "retry", "reason"),
    [
        (200, False, Outcome.DELIVERED),
        (204, False, Outcome.DELIVERED),
        (301, False, Outcome.REDIRECT),
        (307, False, Outcome.REDIRECT),
        (400, False, Outcome.CLIENT_ERROR),
        (401, False, Outcome.CLIENT_ERROR),
        (404, False, Outcome.CLIENT_ERROR),
        (410, False, Outcome.CLIENT_ERROR),
        (413, False, Outcome.CLIENT_ERROR),
        (408, True, Outcome.REQUEST_TIMEOUT),
        (429, True, Outcome.RATE_LIMITED),
        (500, True, Outcome.SERVER_ERROR),
        (502, True, Outcome.SERVER_ERROR),
        (503, True, Outcome.SERVER_ERROR),
        (504, True, Outcome.SERVER_ERROR),
        (httpx.ReadTimeout("hang", request=REQUEST), True, Outcome.TIMEOUT),
        (httpx.ConnectTimeout("slow", request=REQUEST), True, Outcome.TIMEOUT),
        (TimeoutError(), True, Outcome.TIMEOUT),
        (httpx.ConnectError("refused", request=REQUEST), True, Outcome.CONNECTION),
        (httpx.RemoteProtocolError("eof", request=REQUEST), True, Outcome.CONNECTION),
        (ConnectionRefusedError(), True, Outcome.CONNECTION),
        (RetryableError("dns down"), True, Outcome.CONNECTION),
        (UnsafeDestination("private", "10.0.0.1"), False, Outcome.UNSAFE_DESTINATION),
        (ValueError("bug"), False, Outcome.UNEXPECTED),
    ],
)
def test_decision_table(outcome: object, retry: bool, reason: Outcome) -> None:
    d = policy().decide(outcome, attempt=1, headers={}, now=NOW)  # type: ignore[arg-type]
    assert (d.retry, d.reason) == (retry, reason)
    assert d.endpoint_failed is retry
    assert classify(outcome) == reason  # type: ignore[arg-type]
    if not retry:
        assert d.delay_s == 0


def test_full_jitter_stays_within_the_exponential_envelope_and_varies() -> None:
    p = policy(base_s=1.0, cap_s=60.0, max_attempts=100)
    for attempt in range(1, 12):
        ceiling = min(60.0, 2.0 ** (attempt - 1))
        delays = [p.decide(500, attempt, {}, NOW).delay_s for _ in range(200)]
        assert all(0 <= d <= ceiling for d in delays)
        assert (
            max(delays) > 0.8 * ceiling and min(delays) < 0.2 * ceiling
        )  # full, not equal, jitter


def test_injected_rng_makes_delays_reproducible() -> None:
    a = [policy().decide(503, n, {}, NOW).delay_s for n in range(1, 8)]
    b = [policy().decide(503, n, {}, NOW).delay_s for n in range(1, 8)]
    assert a == b


def test_huge_attempt_numbers_do_not_overflow() -> None:
    assert policy(max_attempts=10**6).decide(500, 5000, {}, NOW).delay_s <= 300


def test_attempts_run_out() -> None:
    p = policy(max_attempts=3)
    assert p.decide(500, 2, {}, NOW).retry
    last = p.decide(500, 3, {}, NOW)
    assert not last.retry and last.exhausted and last.reason == Outcome.SERVER_ERROR
    assert not p.decide(404, 1, {}, NOW).exhausted


@pytest.mark.parametrize(
    ("value", "delay"),
    [
        ("120", 120.0),
        ("0", 0.0),
        (email.utils.formatdate(NOW + 90, usegmt=True), 90.0),
        (email.utils.formatdate(NOW - 90, usegmt=True), 0.0),  # in the past: now
        ("999999", 3600.0),  # capped
        (email.utils.formatdate(NOW + 86_400 * 30, usegmt=True), 3600.0),
    ],
)
def test_retry_after_is_honoured_and_capped(value: str, delay: float) -> None:
    d = policy().decide(429, 1, {"Retry-After": value}, NOW)
    assert d.retry and d.delay_s == pytest.approx(delay)
    assert policy().decide(503, 1, {"retry-after": value}, NOW).delay_s == pytest.approx(delay)


@pytest.mark.parametrize("value", ["soon", "-5", "1.5", "", "Wed, 99 Foo 2023 99:99:99 GMT"])
def test_unparseable_retry_after_falls_back_to_backoff(value: str) -> None:
    d = policy(base_s=1.0).decide(429, 1, {"Retry-After": value}, NOW)
    assert d.retry and 0 <= d.delay_s <= 1.0


def test_retry_after_does_not_make_a_4xx_retryable() -> None:
    assert not policy().decide(400, 1, {"Retry-After": "5"}, NOW).retry


def test_r12_receiver_down_for_two_minutes_is_eventually_delivered() -> None:
    """A receiver answering 500 for 120 s: the schedule keeps trying and gets through after."""
    p = policy(base_s=1.0, cap_s=30.0, max_attempts=20)
    t, attempt = 0.0, 1
    while True:
        status = 500 if t < 120 else 200
        d = p.decide(status, attempt, {}, NOW + t)
        if not d.retry:
            break
        t += d.delay_s
        attempt += 1
    assert d.reason == Outcome.DELIVERED and 120 <= t <= 150 and attempt <= 20


def test_circuit_opens_after_threshold_and_probes_after_cooldown() -> None:
    c = Circuit(failure_threshold=3, cooldown_s=30)
    for t in range(3):
        assert c.allow(t)
        c.record(False, t)
    assert c.state(2) == CircuitState.OPEN
    assert not c.allow(10) and c.retry_at(10) == 32
    assert c.state(32) == CircuitState.HALF_OPEN
    assert c.allow(32)  # the probe
    assert not c.allow(33)  # only one at a time
    c.record(False, 34)
    assert c.state(34) == CircuitState.OPEN and not c.allow(40)
    assert c.allow(64)
    c.record(True, 65)
    assert c.state(65) == CircuitState.CLOSED and c.allow(65)


def test_success_resets_the_failure_count() -> None:
    c = Circuit(failure_threshold=3, cooldown_s=30)
    c.record(False, 0)
    c.record(False, 1)
    c.record(True, 2)
    c.record(False, 3)
    c.record(False, 4)
    assert c.state(4) == CircuitState.CLOSED


def test_lost_probe_is_given_up_after_a_cooldown() -> None:
    c = Circuit(failure_threshold=1, cooldown_s=10)
    c.record(False, 0)
    assert c.allow(10)  # probe starts; the process dies before it reports
    assert not c.allow(15)
    assert c.allow(20)


def test_circuit_round_trip() -> None:
    c = Circuit(failure_threshold=2, cooldown_s=10)
    c.record(False, 0)
    c.record(False, 1)
    back = Circuit.from_dict(c.to_dict(), failure_threshold=2, cooldown_s=10)
    assert back.to_dict() == c.to_dict() and back.state(5) == CircuitState.OPEN
