"""R19 for alerting: hostile ThresholdBreach and Deployment bytes through the agents' handlers.

In process, with the real decode, engine, grouping, payload rendering and dead-letter paths of
`AlertingService` (no faust, Kafka or Redis; see tests/alerting_support.alerting_shell). After
every batch the service flushes its groups (`tick`), so a breach that would poison the engine's
state for later notifications is caught too. No exception escapes; each record is handled or
dead-lettered once.
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from services.common import serde
from tests.alerting_support import FakeMessage, alerting_shell, breach, write_config
from tests.model_factory import deployment
from tests.record_fuzz import hostile_record, mutated_bytes

pytestmark = pytest.mark.unit

FUZZ = settings(
    max_examples=80,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
CONFIG = write_config(
    Path(tempfile.mkdtemp(prefix="fuzz-alerting-")) / "alerting.yaml",
    {"ops": "https://hooks.example.com/streamops"},
    after_windows=1,
)
BREACH = {**breach(), "labels": {"team": "risk"}}
DEPLOYMENT = deployment({"name": "credit", "model_id": "m1", "version": 1})
BREACHES, DEPLOYMENTS = "fz.breaches", "fz.deployments"


def _outcome(topic: str, values: list[bytes | None]) -> tuple[list[str], list[dict]]:
    """Feed `values` as one batch (breaches) or one by one (deployments); what was sent."""
    shell, sent = alerting_shell(CONFIG)

    async def go() -> None:
        # a valid breach first, so the hostile one joins a live group and is rendered with it
        await shell.handle_breaches(
            [FakeMessage(BREACHES, serde.encode("ThresholdBreach", BREACH))]
        )
        if topic == BREACHES:
            await shell.handle_breaches(
                [FakeMessage(BREACHES, v, offset=i + 1) for i, v in enumerate(values)]
            )
        else:
            for i, v in enumerate(values):
                await shell.handle_deployment(FakeMessage(DEPLOYMENTS, v, offset=i))
        await shell.tick()

    asyncio.run(go())
    names = [name for name, _ in sent]
    letters = [serde.decode(v, expected="DeadLetter")[1] for n, v in sent if n == "DeadLetter"]
    return names, letters


def _check(topic: str, value: bytes) -> None:
    names, letters = _outcome(topic, [value])
    assert len(letters) <= 1, letters  # dead-lettered at most once
    for letter in letters:
        assert letter["original"] == value and letter["service"] == "alerting"
        assert letter["reason"] != "handler_failed", letter["error"]
    assert "Entry" in names  # the valid breach before it is still notified


def test_a_breach_observed_in_the_year_146_million_is_dead_lettered_not_a_failing_flush():
    """Alone in a new group, it once made every flush raise (year out of range), after the
    state with it was saved: a crash on every tick and after every restart."""
    shell, sent = alerting_shell(CONFIG)
    value = serde.encode("ThresholdBreach", {**BREACH, "observed_at": 2**62})

    async def go() -> None:
        await shell.handle_breaches([FakeMessage(BREACHES, value)])
        await shell.tick()
        await shell.tick()
        await shell.handle_breaches(
            [FakeMessage(BREACHES, serde.encode("ThresholdBreach", BREACH), offset=1)]
        )
        await shell.tick()

    asyncio.run(go())
    (letter,) = [serde.decode(v, expected="DeadLetter")[1] for n, v in sent if n == "DeadLetter"]
    assert letter["original"] == value and letter["reason"] == "out_of_range"
    assert "Entry" in [name for name, _ in sent], "the next valid breach is still notified"


def test_a_valid_breach_is_notified_and_not_dead_lettered():
    names, letters = _outcome(BREACHES, [serde.encode("ThresholdBreach", breach())])
    assert letters == [] and "Entry" in names


@FUZZ
@given(value=st.binary(max_size=300))
@example(value=b"")
def test_random_bytes_are_dead_lettered(value):
    _check(BREACHES, value)
    _, letters = _outcome(BREACHES, [value])
    assert len(letters) == 1  # random bytes are never a breach


@FUZZ
@given(data=st.data())
def test_mutated_breaches_are_handled_or_dead_lettered(data):
    _check(BREACHES, data.draw(mutated_bytes(serde.encode("ThresholdBreach", BREACH))))


@FUZZ
@given(data=st.data())
@example(data=None)
def test_hostile_values_in_breaches_are_handled_or_dead_lettered(data):
    if data is None:  # a breach observed in the year 146 million: dead-lettered, not a crash
        value = serde.encode("ThresholdBreach", {**BREACH, "observed_at": 2**62})
    else:
        value = data.draw(hostile_record("ThresholdBreach", BREACH))
    _check(BREACHES, value)


@FUZZ
@given(data=st.data())
def test_hostile_deployments_are_handled_or_dead_lettered(data):
    raw = serde.encode("Deployment", DEPLOYMENT)
    value = data.draw(st.one_of(mutated_bytes(raw), hostile_record("Deployment", DEPLOYMENT)))
    _check(DEPLOYMENTS, value)


def test_an_undecodable_deployment_is_dead_lettered_not_skipped():
    _, letters = _outcome(DEPLOYMENTS, [b"not a deployment", None])  # and a tombstone
    assert [(x["stage"], x["reason"], x["original"]) for x in letters] == [
        ("decode", "not_avro", b"not a deployment")
    ]


def test_an_unexpected_error_in_the_engine_is_that_breach_s_dead_letter_not_a_crash():
    shell, sent = alerting_shell(CONFIG)
    real = shell.engine.on_breach

    def on_breach(record, now):
        if record["deployment"] == "doomed":
            raise KeyError("an engine bug this breach hits")
        return real(record, now)

    shell.engine.on_breach = on_breach
    doomed = serde.encode("ThresholdBreach", {**breach(), "deployment": "doomed"})
    good = serde.encode("ThresholdBreach", breach())
    asyncio.run(
        shell.handle_breaches([FakeMessage(BREACHES, doomed, 1), FakeMessage(BREACHES, good, 2)])
    )
    letters = [serde.decode(v)[1] for n, v in sent if n == "DeadLetter"]
    assert [(x["stage"], x["reason"], x["source_offset"]) for x in letters] == [
        ("handle", "handler_failed", 1)
    ]
    assert "KeyError" in letters[0]["error"] and "Entry" in [n for n, _ in sent]
