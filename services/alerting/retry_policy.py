"""Whether and when to retry a webhook delivery, and a circuit breaker per endpoint.

2xx is delivered. 408, 429 and 5xx, timeouts and connection errors are retried with exponential
backoff and full jitter (a random delay in [0, min(cap, base * 2**(attempt-1))]), unless the
receiver sent `Retry-After` (seconds or an HTTP date), which is honoured up to a cap. Every other
4xx and every 3xx (redirects are never followed: SSRF) is final, and so is an unsafe destination.
The RNG and the clock are passed in, so every decision is reproducible.
"""

from __future__ import annotations

import dataclasses
import email.utils
import enum
import random
from collections.abc import Mapping
from typing import Any

import httpx

from services.alerting.ssrf import UnsafeDestination
from services.common.errors import RetryableError


class Outcome(enum.StrEnum):
    """What one attempt came to; a bounded set usable as a metric label."""

    DELIVERED = "delivered"
    SERVER_ERROR = "server_error"  # 5xx
    RATE_LIMITED = "rate_limited"  # 429
    REQUEST_TIMEOUT = "request_timeout"  # 408
    CLIENT_ERROR = "client_error"  # other 4xx: the request itself is wrong, retrying won't help
    REDIRECT = "redirect"  # 3xx: not followed
    TIMEOUT = "timeout"
    CONNECTION = "connection"
    UNSAFE_DESTINATION = "unsafe_destination"
    UNEXPECTED = "unexpected"  # an exception nobody classified: a bug, not worth retrying


RETRYABLE = frozenset(
    {
        Outcome.SERVER_ERROR,
        Outcome.RATE_LIMITED,
        Outcome.REQUEST_TIMEOUT,
        Outcome.TIMEOUT,
        Outcome.CONNECTION,
    }
)


@dataclasses.dataclass(frozen=True)
class Decision:
    """Retry or not, after how long, and why; `exhausted` when only the attempt count said no."""

    retry: bool
    delay_s: float
    reason: Outcome
    exhausted: bool = False

    @property
    def endpoint_failed(self) -> bool:
        """True when the attempt says the endpoint is unhealthy (counts for its circuit)."""
        return self.reason in RETRYABLE


def classify(outcome: int | BaseException) -> Outcome:
    """The Outcome of an HTTP status code or of the exception an attempt raised."""
    if isinstance(outcome, BaseException):
        if isinstance(outcome, UnsafeDestination):
            return Outcome.UNSAFE_DESTINATION
        if isinstance(outcome, httpx.TimeoutException | TimeoutError):
            return Outcome.TIMEOUT
        if isinstance(outcome, httpx.TransportError | OSError | RetryableError):
            return Outcome.CONNECTION
        return Outcome.UNEXPECTED
    if 200 <= outcome < 300:
        return Outcome.DELIVERED
    if outcome == 408:
        return Outcome.REQUEST_TIMEOUT
    if outcome == 429:
        return Outcome.RATE_LIMITED
    if 300 <= outcome < 400:
        return Outcome.REDIRECT
    if 500 <= outcome < 600:
        return Outcome.SERVER_ERROR
    return Outcome.CLIENT_ERROR


def retry_after_s(headers: Mapping[str, str], now: float) -> float | None:
    """Seconds the receiver asked us to wait (delta-seconds or HTTP-date), None if absent/bad."""
    value = next((v for k, v in headers.items() if k.lower() == "retry-after"), None)
    if value is None:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None  # HTTP dates are GMT; one without a zone is malformed
    return max(0.0, when.timestamp() - now)


@dataclasses.dataclass(frozen=True)
class RetryPolicy:
    """Backoff parameters; `decide` turns one attempt's result into a Decision."""

    base_s: float = 1.0
    cap_s: float = 300.0
    max_attempts: int = 12
    retry_after_cap_s: float = 3600.0
    rng: random.Random = dataclasses.field(default_factory=random.Random, compare=False)

    def backoff_s(self, attempt: int) -> float:
        """Full jitter: uniform in [0, min(cap, base * 2**(attempt-1))]."""
        ceiling = min(self.cap_s, self.base_s * 2.0 ** min(attempt - 1, 63))
        return self.rng.uniform(0.0, ceiling)

    def decide(
        self,
        outcome: int | BaseException,
        attempt: int,
        headers: Mapping[str, str] | None = None,
        now: float = 0.0,
    ) -> Decision:
        """Decide after attempt number `attempt` (1 for the first) ended in `outcome`."""
        if attempt < 1:
            raise ValueError("attempts are counted from 1")
        reason = classify(outcome)
        if reason not in RETRYABLE:
            return Decision(False, 0.0, reason)
        if attempt >= self.max_attempts:
            return Decision(False, 0.0, reason, exhausted=True)
        asked = retry_after_s(headers or {}, now)
        if asked is not None:
            return Decision(True, min(asked, self.retry_after_cap_s), reason)
        return Decision(True, self.backoff_s(attempt), reason)


class CircuitState(enum.StrEnum):
    """Closed lets everything through, open nothing, half-open one probe."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class Circuit:
    """A circuit breaker for one endpoint: open after N failures in a row, probe after cool-down.

    While open, deliveries to the endpoint wait in the outbox instead of burning attempts. A probe
    that never reports (the process died) is given up after another cool-down, so the circuit
    cannot stay half-open forever.
    """

    def __init__(self, failure_threshold: int = 5, cooldown_s: float = 30.0) -> None:
        if failure_threshold < 1 or cooldown_s <= 0:
            raise ValueError("failure_threshold >= 1 and cooldown_s > 0 are required")
        self.failure_threshold = failure_threshold
        self.cooldown_s = cooldown_s
        self._state = CircuitState.CLOSED
        self._failures = 0
        self._opened_at = 0.0
        self._probe_at: float | None = None

    def state(self, now: float) -> CircuitState:
        """The state at `now` (an open circuit past its cool-down reads as half-open)."""
        if self._state == CircuitState.OPEN and now >= self._opened_at + self.cooldown_s:
            return CircuitState.HALF_OPEN
        return self._state

    def allow(self, now: float) -> bool:
        """May an attempt start now? In half-open, True once: that attempt is the probe."""
        state = self.state(now)
        if state == CircuitState.CLOSED:
            return True
        if state == CircuitState.OPEN:
            return False
        if self._probe_at is not None and now < self._probe_at + self.cooldown_s:
            return False
        self._state = CircuitState.HALF_OPEN
        self._probe_at = now
        return True

    def record(self, success: bool, now: float) -> None:
        """Report how an allowed attempt went."""
        self._probe_at = None
        if success:
            self._state = CircuitState.CLOSED
            self._failures = 0
            return
        self._failures += 1
        if self._state == CircuitState.HALF_OPEN or self._failures >= self.failure_threshold:
            self._state = CircuitState.OPEN
            self._opened_at = now

    def retry_at(self, now: float) -> float:
        """The earliest time an attempt may be allowed."""
        if self._state == CircuitState.OPEN:
            return max(now, self._opened_at + self.cooldown_s)
        if self._probe_at is not None:
            return max(now, self._probe_at + self.cooldown_s)
        return now

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able form."""
        return {
            "state": self._state.value,
            "failures": self._failures,
            "opened_at": self._opened_at,
            "probe_at": self._probe_at,
        }

    @classmethod
    def from_dict(
        cls, data: Mapping[str, Any], failure_threshold: int = 5, cooldown_s: float = 30.0
    ) -> Circuit:
        """Inverse of `to_dict`."""
        circuit = cls(failure_threshold, cooldown_s)
        circuit._state = CircuitState(data["state"])
        circuit._failures = int(data["failures"])
        circuit._opened_at = float(data["opened_at"])
        circuit._probe_at = data["probe_at"]
        return circuit
