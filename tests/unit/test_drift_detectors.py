"""Error-stream change detectors: a jump in the error rate is caught, a stable stream is not."""

from __future__ import annotations

import json

import numpy as np
import pytest

from services.common.errors import ConfigError
from services.drift.detectors import ErrorStreamDetector

pytestmark = pytest.mark.unit

KINDS = ["adwin", "page_hinkley", "ddm"]


def errors(rng: np.random.Generator, rate: float, n: int) -> np.ndarray:
    """0/1 misclassifications at a given rate."""
    return (rng.random(n) < rate).astype(float)


def samples_to_detection(det: ErrorStreamDetector, stream: np.ndarray, batch: int) -> int | None:
    """How many samples of ``stream`` until the detector flags a change (per batch)."""
    for start in range(0, stream.size, batch):
        if det.update_many(stream[start : start + batch]):
            return start + batch
    return None


@pytest.mark.parametrize("kind", KINDS)
def test_rate_jump_is_detected_within_a_few_hundred_samples(kind: str) -> None:
    for seed in range(5):
        rng = np.random.default_rng(seed)
        det = ErrorStreamDetector(kind)
        assert not det.update_many(errors(rng, 0.1, 1_000))
        delay = samples_to_detection(det, errors(rng, 0.4, 1_000), batch=10)
        assert delay is not None and delay <= 300, (seed, delay)
        assert det.changes >= 1


@pytest.mark.parametrize("kind", KINDS)
def test_stable_stream_does_not_trigger(kind: str) -> None:
    for seed in range(10):
        det = ErrorStreamDetector(kind)
        assert not det.update_many(errors(np.random.default_rng(100 + seed), 0.1, 4_000)), seed
        assert det.changes == 0


@pytest.mark.parametrize("kind", ["adwin", "page_hinkley"])
def test_real_valued_errors_are_accepted(kind: str) -> None:
    rng = np.random.default_rng(7)
    det = ErrorStreamDetector(kind)
    assert not det.update_many(np.abs(rng.normal(0, 1, 1_000)))
    assert samples_to_detection(det, np.abs(rng.normal(0, 3, 1_000)), batch=50) is not None


@pytest.mark.parametrize("kind", KINDS)
def test_state_round_trip_continues_like_the_original(kind: str) -> None:
    rng = np.random.default_rng(8)
    det = ErrorStreamDetector(kind, tail=5_000)
    det.update_many(errors(rng, 0.1, 800))
    state = json.loads(json.dumps(det.state()))
    assert len(state["tail"]) == 800
    restored = ErrorStreamDetector.from_state(state)
    after = errors(rng, 0.4, 1_000)
    # The tail covers all history, so the restored detector behaves exactly like the original.
    assert samples_to_detection(restored, after, 10) == samples_to_detection(det, after, 10)


def test_state_is_bounded_and_cleared_at_a_change() -> None:
    rng = np.random.default_rng(9)
    det = ErrorStreamDetector("adwin", tail=100)
    det.update_many(errors(rng, 0.1, 1_000))
    assert len(det.state()["tail"]) == 100
    samples_to_detection(det, errors(rng, 0.6, 1_000), batch=1)
    assert len(det.state()["tail"]) < 100  # errors before the change were dropped


def test_nan_errors_are_skipped_and_bad_input_rejected() -> None:
    det = ErrorStreamDetector("ddm")
    det.update_many([0.0, float("nan"), 1.0])
    assert det.state()["tail"] == [0.0, 1.0]
    with pytest.raises(ConfigError, match="0/1"):
        det.update_many([0.5])
    with pytest.raises(ConfigError):
        ErrorStreamDetector("cusum")  # type: ignore[arg-type]
    with pytest.raises(ConfigError):
        ErrorStreamDetector("adwin", {"no_such_param": 1})
