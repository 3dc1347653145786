"""The watchdog that turns a call blocked for good into a restart (R1 exactly-once)."""

from __future__ import annotations

import doctest
import threading

import pytest

from services.common import watchdog
from services.common.watchdog import Watchdog

pytestmark = pytest.mark.unit


def test_doctests():
    assert doctest.testmod(watchdog).failed == 0


def test_fires_once_for_a_block_past_its_limit_and_names_it():
    fired: list[tuple[str, float]] = []
    done = threading.Event()
    dog = Watchdog(
        0.05, on_expire=lambda what, s: (fired.append((what, s)), done.set()), poll_s=0.01
    )
    with dog.guard("commit"):
        assert done.wait(1.0)
        done.clear()
        assert not done.wait(0.1)  # once per block, not on every poll after the limit
    assert [what for what, _ in fired] == ["commit"]
    assert fired[0][1] > 0.05


def test_blocks_within_the_limit_never_fire():
    fired = threading.Event()
    dog = Watchdog(0.2, on_expire=lambda what, s: fired.set(), poll_s=0.01)
    for _ in range(20):
        with dog.guard("quick"):
            pass
    assert not fired.wait(0.3)


def test_a_block_that_raises_disarms_the_watchdog():
    fired = threading.Event()
    dog = Watchdog(0.05, on_expire=lambda what, s: fired.set(), poll_s=0.01)
    with pytest.raises(RuntimeError), dog.guard("failing"):
        raise RuntimeError("boom")
    assert not fired.wait(0.2)
