"""The follower's per-record path: retries, dead letters for what never applies, Redis waits."""

from __future__ import annotations

import doctest
import threading
from typing import Any

import pytest

from services.common import record_applier, serde
from services.common.deadletter import DeadLetterWriter
from services.common.errors import PoisonMessage, Reason, RetryableError
from services.common.record_applier import RecordApplier, Refusal
from services.common.topic_decoder import TopicDecoder
from services.common.topics import TopicNamer

pytestmark = pytest.mark.unit

NAMER = TopicNamer("t.")


class FlakyApply:
    """Fails the first `failures` calls with `error`, then applies (records what it applied)."""

    def __init__(self, failures: int, error: Exception) -> None:
        self.failures = failures
        self.error = error
        self.calls = 0
        self.applied: list[dict[str, Any]] = []

    def __call__(self, _topic: str, record: dict[str, Any]) -> None:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error
        self.applied.append(record)


def _applier(apply, letters: list[Refusal], **kw: Any) -> tuple[RecordApplier, list[float]]:
    slept: list[float] = []
    applier = RecordApplier(
        TopicDecoder(NAMER),
        apply,
        dead_letter=letters.append,
        backoff_s=0.1,
        sleep=slept.append,
        **kw,
    )
    return applier, slept


def _drift_value() -> bytes:
    report = {
        "deployment": "credit",
        "model_id": "m",
        "model_version": 1,
        "window_start": 0,
        "window_end": 60_000,
        "event_count": 1,
        "prediction_count": 1,
        "features": [],
        "weighted_drift": 0.0,
        "prediction_psi": None,
        "metrics": {},
        "label_coverage": 0.0,
        "label_delay_ms_p50": None,
        "schema_violations": 0,
        "late_events": 0,
        "change_point": False,
        "challengers": [],
    }
    return serde.encode("DriftReport", report)


def test_a_transient_failure_is_retried_and_applied_without_a_dead_letter():
    apply, letters = FlakyApply(2, ValueError("blip")), []
    applier, slept = _applier(apply, letters)
    assert applier.handle(NAMER.drift, 0, 5, b"credit", _drift_value()) is True
    assert apply.calls == 3 and len(apply.applied) == 1
    assert letters == [] and applier.dead_lettered == 0 and applier.applied == 1
    assert slept == [0.1, 0.2]  # a short, growing backoff


def test_a_record_that_always_fails_is_dead_lettered_with_its_bytes_and_coordinates():
    apply, letters = FlakyApply(10**9, KeyError("champion")), []
    applier, _ = _applier(apply, letters)
    value = _drift_value()
    assert applier.handle(NAMER.drift, 2, 41, b"credit", value) is False
    assert apply.calls == 3
    [letter] = letters
    assert (letter.topic, letter.partition, letter.offset, letter.key) == (
        NAMER.drift,
        2,
        41,
        b"credit",
    )
    assert letter.value == value and letter.stage == "apply" and letter.attempts == 3
    assert letter.reason is Reason.HANDLER_FAILED and "KeyError" in letter.error
    assert applier.dead_lettered == 1
    # the next record still applies
    good = FlakyApply(0, ValueError())
    applier2, _ = _applier(good, letters)
    assert applier2.handle(NAMER.drift, 2, 42, b"credit", value) is True


def test_a_poison_refusal_from_apply_is_dead_lettered_at_once_with_its_reason():
    apply = FlakyApply(1, PoisonMessage(Reason.WRONG_TYPE, "champion is not a map"))
    letters: list[Refusal] = []
    applier, slept = _applier(apply, letters)
    assert applier.handle(NAMER.drift, 0, 1, None, _drift_value()) is False
    assert apply.calls == 1 and slept == []
    assert letters[0].reason is Reason.WRONG_TYPE and letters[0].attempts == 1


def test_an_undecodable_record_is_dead_lettered_at_the_decode_stage_and_on_poison_called():
    seen: list[tuple[str, bytes]] = []
    letters: list[Refusal] = []
    applier = RecordApplier(
        TopicDecoder(NAMER),
        FlakyApply(0, ValueError()),
        on_poison=lambda topic, raw, exc: seen.append((topic, raw)),
        dead_letter=letters.append,
    )
    assert applier.handle(NAMER.models, 0, 3, b"k", b"not avro at all") is False
    assert seen == [(NAMER.models, b"not avro at all")]
    assert letters[0].stage == "decode" and letters[0].reason is Reason.NOT_AVRO
    assert letters[0].value == b"not avro at all"


def test_a_store_outage_pauses_the_record_instead_of_dead_lettering_it():
    apply, letters = FlakyApply(8, RetryableError("redis down")), []
    applier, slept = _applier(apply, letters, max_backoff_s=1.0)
    assert applier.handle(NAMER.drift, 0, 9, None, _drift_value()) is True
    assert letters == [] and apply.calls == 9 and applier.stalled is False
    assert slept == [0.1, 0.2, 0.4, 0.8, 1.0, 1.0, 1.0, 1.0]  # capped, never given up


def test_a_stop_during_an_outage_returns_without_a_dead_letter():
    stop = threading.Event()

    def apply(_topic: str, _record: dict[str, Any]) -> None:
        stop.set()
        raise RetryableError("redis down")

    letters: list[Refusal] = []
    applier = RecordApplier(TopicDecoder(NAMER), apply, dead_letter=letters.append, stop=stop)
    assert applier.handle(NAMER.drift, 0, 9, None, _drift_value()) is False
    assert letters == [] and applier.dead_lettered == 0


def test_a_failing_sink_neither_stops_the_follower_nor_hides_the_count():
    def sink(_refusal: Refusal) -> None:
        raise BufferError("queue full")

    applier = RecordApplier(
        TopicDecoder(NAMER), FlakyApply(0, ValueError()), dead_letter=sink, sleep=lambda s: None
    )
    assert applier.handle(NAMER.drift, 0, 0, None, b"\x00garbage") is False
    assert applier.dead_lettered == 1


def test_a_tombstone_is_neither_applied_nor_dead_lettered():
    letters: list[Refusal] = []
    applier, _ = _applier(FlakyApply(0, ValueError()), letters)
    assert applier.handle(NAMER.deployments, 0, 0, b"credit", None) is False
    assert letters == [] and applier.applied == 0


def test_the_dead_letter_record_of_a_refusal_names_the_service_and_encodes():
    refusal = Refusal(NAMER.drift, 1, 2, b"k", b"raw", "apply", Reason.HANDLER_FAILED, "x", 3)
    writer = DeadLetterWriter(NAMER.deadletter, "registry", serde.encode)
    record = refusal.dead_letter(writer)
    _, back = serde.decode(writer.encode(record), expected="DeadLetter")
    assert back["service"] == "registry" and back["original"] == b"raw"
    assert (back["source_partition"], back["source_offset"], back["attempts"]) == (1, 2, 3)


def test_doctests():
    failed, attempted = doctest.testmod(record_applier)
    assert attempted and failed == 0
