"""R19 for the registry: hostile records on every followed topic, through the follower's path.

Each case goes through what the registry's follower does with a message (TopicDecoder, then
Ingest with the real view, verifier and breach log) over a Redis stand-in that encodes every
argument as redis-py would. No exception escapes; each record is applied (a refused model is
listed as rejected, which is handling it) or dead-lettered once, with a specific reason: never
`handler_failed`, which would mean the ingest raised something it did not mean to.
"""

from __future__ import annotations

import functools
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from services.common import serde, signing
from services.common.model_verifier import ModelVerifier
from services.common.record_applier import RecordApplier, Refusal
from services.common.topic_decoder import TopicDecoder
from services.common.topics import TopicNamer
from services.registry.ingest import Ingest
from services.registry.view import RegistryView
from tests.alerting_support import breach
from tests.model_factory import credit_content, deployment, keypair, published
from tests.record_fuzz import encoded, hostile_record, hostile_values, mutated_bytes
from tests.registry_support import RedisStub, drift_report, governance_request

pytestmark = pytest.mark.unit

NAMER = TopicNamer("fz.")
FUZZ = settings(
    max_examples=60,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
_KEY_DIR = Path(tempfile.mkdtemp(prefix="fuzz-registry-keys-"))
KEY = keypair(_KEY_DIR)
TRUSTED = signing.load_public_keys(_KEY_DIR)


def _threshold() -> dict[str, Any]:
    return {
        "metric": "psi",
        "feature": "age",
        "warning": 0.1,
        "critical": 0.25,
        "hysteresis": 0.02,
        "direction": "above",
    }


# topic -> (record name, a valid record)
SAMPLES: dict[str, tuple[str, dict[str, Any]]] = {
    NAMER.deployments: (
        "Deployment",
        {
            **deployment({"name": "credit", "model_id": "m1", "version": 1}),
            "thresholds": [_threshold()],
        },
    ),
    NAMER.governance: (
        "GovernanceEvent",
        governance_request("credit", "ed", None, {"thresholds": [_threshold()]}),
    ),
    NAMER.drift: ("DriftReport", drift_report()),
    NAMER.breaches: ("ThresholdBreach", breach()),
}
TOPICS = [NAMER.models, *SAMPLES]


@functools.cache
def _valid(topic: str) -> bytes:
    if topic == NAMER.models:
        return serde.encode("ModelPublished", published(credit_content(), KEY))
    name, record = SAMPLES[topic]
    return serde.encode(name, record)


def _run(topic: str, value: bytes) -> tuple[bool, list[Refusal], Ingest]:
    stub = RedisStub()
    ingest = Ingest(RegistryView(stub, NAMER.prefix), ModelVerifier(TRUSTED), NAMER)  # type: ignore[arg-type]
    letters: list[Refusal] = []
    applier = RecordApplier(
        TopicDecoder(NAMER),
        ingest,
        ingest.on_poison,
        dead_letter=letters.append,
        sleep=lambda _s: None,
    )
    applied = applier.handle(topic, 0, 42, b"key", value)
    return applied, letters, ingest


def _check(topic: str, value: bytes) -> None:
    applied, letters, _ = _run(topic, value)
    assert applied != bool(letters), (applied, letters)  # handled xor dead-lettered, once
    assert len(letters) <= 1
    for letter in letters:
        assert letter.reason.value != "handler_failed", letter.error
        assert letter.value == value and (letter.partition, letter.offset) == (0, 42)


def test_every_valid_sample_applies():
    for topic in TOPICS:
        applied, letters, _ = _run(topic, _valid(topic))
        assert applied and not letters, (topic, letters)


@FUZZ
@given(topic=st.sampled_from(TOPICS), value=st.binary(max_size=400))
@example(topic=NAMER.drift, value=b"")
@example(topic=NAMER.governance, value=b"\xc3\x01")
def test_random_bytes_are_dead_lettered(topic, value):
    _check(topic, value)


@FUZZ
@given(data=st.data(), topic=st.sampled_from(TOPICS))
def test_mutated_avro_is_applied_or_dead_lettered(data, topic):
    _check(topic, data.draw(mutated_bytes(_valid(topic))))


@FUZZ
@given(data=st.data(), topic=st.sampled_from(list(SAMPLES)))
def test_hostile_values_in_valid_records_are_applied_or_dead_lettered(data, topic):
    name, record = SAMPLES[topic]
    _check(topic, data.draw(hostile_record(name, record)))


@settings(FUZZ, max_examples=25)
@given(data=st.data())
def test_signed_models_with_hostile_content_are_applied_or_rejected(data):
    content = data.draw(hostile_values(credit_content()))
    _check(NAMER.models, encoded("ModelPublished", published(content, KEY)))


@pytest.mark.parametrize("topic", TOPICS)
def test_a_record_of_another_type_is_dead_lettered_as_wrong_type(topic):
    other = NAMER.drift if topic != NAMER.drift else NAMER.breaches
    applied, letters, _ = _run(topic, _valid(other))
    assert not applied and letters[0].reason.value == "wrong_type"


@pytest.mark.parametrize(
    ("topic", "field", "value", "reason"),
    [
        # JSON has no NaN: the view's API would answer 500 for every read of the deployment
        (NAMER.drift, "weighted_drift", float("nan"), "non_finite"),
        (NAMER.breaches, "value", float("inf"), "non_finite"),
        (NAMER.deployments, "reason", "x" * 100_000, None),  # big but within the limit
        (NAMER.breaches, "deployment", "x" * 100_000, "oversize"),
    ],
)
def test_regression_cases(topic, field, value, reason):
    """Cases the fuzzing covers, kept whatever the strategies draw later."""
    name, record = SAMPLES[topic]
    raw = serde.encode(name, {**record, field: value})
    _check(topic, raw)
    applied, letters, _ = _run(topic, raw)
    assert (letters[0].reason.value if letters else None) == reason
    assert applied == (reason is None)
