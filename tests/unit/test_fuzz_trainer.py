"""R19 for the trainer: hostile RetrainRequest bytes through the decode and the retrain handler.

What the runner does with a `retrain` message, without Kafka: TopicDecoder, then the real
`RetrainHandler` over a real ledger (a signed champion and its deployment), with a slice source
that records what it was asked for and a build that refuses the data (training itself is
covered elsewhere). No exception escapes; each request is dead-lettered with a reason or
answered (a RetrainOutcome, or counted as already answered).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from services.common import serde, signing
from services.common.errors import PoisonMessage, RetryableError
from services.common.messages import Inbound, Outbound, Rejected
from services.common.model_verifier import ModelVerifier
from services.common.topic_decoder import TopicDecoder
from services.common.topics import TopicNamer
from services.trainer.gate import ChampionGate
from services.trainer.metrics import TrainerMetrics
from services.trainer.model_build import TrainOptions
from services.trainer.retrain import MAX_LAST_N, RetrainHandler
from services.trainer.validation import DataValidationError
from services.trainer.versions import ModelLedger
from tests.model_factory import credit_content, deployment, keypair, published
from tests.record_fuzz import hostile_record, mutated_bytes

pytestmark = pytest.mark.unit

NAMER = TopicNamer("fz.")
FUZZ = settings(
    max_examples=80,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
REQUEST = {
    "request_id": "r1",
    "deployment": "credit",
    "reason": "accuracy breached for 3 windows",
    "requested_by": "alerting:retrain-policy",
    "requested_at": 1_900_000_000_000,
    "breach_ids": ["b1", "b2"],
    "last_n": 500,
}
_KEYS = Path(tempfile.mkdtemp(prefix="fuzz-trainer-keys-"))
KEY = keypair(_KEYS)


class Slices:
    """A slice source that keeps what it was asked and fails like the real one can."""

    def __init__(self, fail: Exception | None = None) -> None:
        self.asked: list[tuple[str, int]] = []
        self.fail = fail

    def read(
        self, deployment: str, last_n: int, feature_names=None, categorical=(), task=None
    ) -> Any:
        self.asked.append((deployment, last_n))
        if self.fail is not None:
            raise self.fail
        return type("Dataset", (), {"rows": 0})()


def _refuse(*_args: Any, **_kwargs: Any) -> Any:
    raise DataValidationError("0 labelled rows; at least 200 are needed")


def _handler(slices: Slices, sleeps: list[float] | None = None) -> RetrainHandler:
    ledger = ModelLedger(ModelVerifier(signing.load_public_keys(_KEYS)))
    content = credit_content()
    assert ledger.add_model(published(content, KEY)) == "verified"
    ledger.add_deployment(deployment(content))
    return RetrainHandler(
        ledger,
        slices,
        KEY,
        NAMER.models,
        outcomes_topic=NAMER.retrain_outcomes,
        options=TrainOptions(),
        gate=ChampionGate(),
        default_last_n=5000,
        metrics=TrainerMetrics(CollectorRegistry()),
        attempts=3,
        backoff_s=2.0,
        sleep=(sleeps if sleeps is not None else []).append,
        build=_refuse,
    )


def _inbound(value: bytes, offset: int = 0) -> Inbound | Rejected:
    """What the runner hands the handler, or the dead letter it writes at decode."""
    placeholder = Inbound(NAMER.retrain, 0, offset, b"k", value, "", {}, 0)
    try:
        name, record = TopicDecoder(NAMER)(NAMER.retrain, value)
    except PoisonMessage as exc:
        return Rejected(placeholder, exc.reason, exc.detail)
    return Inbound(NAMER.retrain, 0, offset, b"k", value, name, record, 0)


def _outcome(
    values: list[bytes], slices: Slices | None = None, sleeps: list[float] | None = None
) -> list[Outbound | Rejected]:
    items = [_inbound(v, i) for i, v in enumerate(values)]
    rejected = [x for x in items if isinstance(x, Rejected)]
    good = [x for x in items if isinstance(x, Inbound)]
    return rejected + (_handler(slices or Slices(), sleeps).handle(good) if good else [])


def _answers(results: list[Outbound | Rejected]) -> list[dict[str, Any]]:
    return [
        serde.decode(r.value, expected="RetrainOutcome")[1]
        for r in results
        if isinstance(r, Outbound) and r.topic == NAMER.retrain_outcomes
    ]


def _check(value: bytes) -> None:
    results = _outcome([value])
    assert len(results) <= 1
    for r in results:
        if isinstance(r, Outbound):  # answered: the build refuses every slice
            (answer,) = _answers([r])
            # ... unless the request is older than the champion, which then answers it
            older = answer["outcome"] == "published" and answer["attempts"] == 0
            assert answer["outcome"] == "refused" or older, answer
            continue
        assert isinstance(r, Rejected) and r.inbound.value == value
        assert r.reason.value != "handler_failed", r.detail


@FUZZ
@given(value=st.binary(max_size=300))
@example(value=b"")
def test_random_bytes_are_dead_lettered(value):
    results = _outcome([value])
    assert len(results) == 1 and isinstance(results[0], Rejected)


@FUZZ
@given(data=st.data())
def test_mutated_requests_are_answered_or_dead_lettered(data):
    _check(data.draw(mutated_bytes(serde.encode("RetrainRequest", REQUEST))))


@FUZZ
@given(data=st.data())
def test_hostile_values_in_requests_are_answered_or_dead_lettered(data):
    _check(data.draw(hostile_record("RetrainRequest", REQUEST)))


@pytest.mark.parametrize("last_n", [0, -1, -(2**63), MAX_LAST_N + 1, 2**63 - 1])
def test_a_request_for_an_impossible_number_of_rows_is_refused_before_reading(last_n):
    slices = Slices()
    value = serde.encode("RetrainRequest", {**REQUEST, "last_n": last_n})
    [result] = _outcome([value], slices)
    assert isinstance(result, Rejected) and result.reason.value == "out_of_range"
    assert slices.asked == []  # nothing read for it


def test_a_valid_request_reads_its_slice_and_is_refused_by_validation_not_dead_lettered():
    slices = Slices()
    results = _outcome([serde.encode("RetrainRequest", REQUEST)], slices)
    assert [(a["request_id"], a["outcome"]) for a in _answers(results)] == [("r1", "refused")]
    assert len(results) == 1 and slices.asked == [("credit", 500)]


def test_a_failing_training_answers_failed_and_dead_letters_only_the_malformed_request():
    slices = Slices(fail=RetryableError("events topic has no leader"))
    sleeps: list[float] = []
    other = {**REQUEST, "deployment": "nowhere", "request_id": "r2"}
    values = [serde.encode("RetrainRequest", r) for r in (REQUEST, other)]
    results = _outcome(values, slices, sleeps)
    dead = [r for r in results if isinstance(r, Rejected)]
    assert [(r.inbound.record["deployment"], r.reason.value) for r in dead] == [
        ("nowhere", "unknown_deployment")
    ]
    (answer,) = _answers(results)
    assert (answer["request_id"], answer["outcome"], answer["attempts"]) == ("r1", "failed", 3)
    assert "no leader" in answer["detail"] and sleeps == [2.0, 4.0]
