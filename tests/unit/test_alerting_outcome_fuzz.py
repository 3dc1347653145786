"""R19 for alerting's retrain outcomes: hostile RetrainOutcome bytes through the agent's handler.

In process, as tests/unit/test_fuzz_alerting.py does for breaches (tests/alerting_support's
`alerting_shell`: the real decode, engine, grouping, rendering and dead-letter paths). After each
record the service flushes its groups, so an outcome that would break rendering for later
notifications is caught too. No exception escapes; each record is handled or dead-lettered once.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from services.common import serde
from tests.alerting_support import FakeMessage, alerting_shell, breach, write_config
from tests.record_fuzz import hostile_record, mutated_bytes

pytestmark = pytest.mark.unit

FUZZ = settings(
    max_examples=80,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
CONFIG = write_config(
    Path(tempfile.mkdtemp(prefix="fuzz-alerting-outcomes-")) / "alerting.yaml",
    {"ops": "https://hooks.example.com/streamops"},
    group_by="[deployment, kind]",  # a retrain alert opens a group of its own, flushed at once
)
OUTCOME = {
    "outcome_id": "o1", "request_id": "rt_1", "deployment": "credit", "outcome": "failed",
    "detail": "gave up after 3 attempt(s): KafkaException: broker down", "model_id": None,
    "version": None, "attempts": 3, "at": int(time.time() * 1000),
}  # fmt: skip
OUTCOMES = "fz.retrain_outcomes"


def _check(value: bytes) -> None:
    shell, sent = alerting_shell(CONFIG)

    async def go() -> None:
        # a valid breach first: its notification must survive whatever the outcome does
        await shell.handle_breaches(
            [FakeMessage("fz.breaches", serde.encode("ThresholdBreach", breach()))]
        )
        await shell.handle_retrain_outcome(FakeMessage(OUTCOMES, value, offset=1))
        await shell.tick()

    asyncio.run(go())
    letters = [serde.decode(v, expected="DeadLetter")[1] for n, v in sent if n == "DeadLetter"]
    assert len(letters) <= 1, letters
    for letter in letters:
        assert letter["original"] == value and letter["service"] == "alerting"
        assert letter["reason"] != "handler_failed", letter["error"]
    assert "Entry" in [n for n, _ in sent]  # the valid breach is still notified


@FUZZ
@given(data=st.data())
def test_mutated_outcomes_are_handled_or_dead_lettered(data):
    _check(data.draw(mutated_bytes(serde.encode("RetrainOutcome", OUTCOME))))


@FUZZ
@given(data=st.data())
@example(data=None)
def test_hostile_values_in_outcomes_are_handled_or_dead_lettered(data):
    if data is None:  # an outcome from the year 146 million: refused, it could not be rendered
        value = serde.encode("RetrainOutcome", {**OUTCOME, "at": 2**62})
    else:
        value = data.draw(hostile_record("RetrainOutcome", OUTCOME))
    _check(value)
