"""The shared keys' writes of a sharded drift group, as the commit script takes them, and the
pace at which the shared keys are read."""

from __future__ import annotations

import json

import pytest

from services.drift.merge import Every, Merged, Shared, SharedWrites
from services.drift.monitor import PartialWindow

pytestmark = pytest.mark.unit


def test_parts_marks_clocks_and_merged_windows_become_flat_arguments():
    shared = Shared("streamops:drift:g:of-2")
    part = PartialWindow("d", "m" * 64, 7, {"counts": [3, 0, 0, 0, 0]})
    w = SharedWrites.of(shared, 1, [part], {"d": (8, 1234), "e": (2, None)}, [Merged("d", 5)])
    assert w.parts == [
        "streamops:drift:g:of-2:part:d:7",
        "1|" + "m" * 64,
        json.dumps(part.state, separators=(",", ":")),
        "streamops:drift:g:of-2:parts:d",
        "7",
        "streamops:drift:g:of-2:deployments",
        "d",
    ]
    assert w.marks == [
        *("streamops:drift:g:of-2:marks:d", "1", "8"),
        *("streamops:drift:g:of-2:clocks:d", "1", "1234"),
        *("streamops:drift:g:of-2:marks:e", "1", "2"),  # count windows: no clock
    ]
    assert w.merged == [
        *("streamops:drift:g:of-2:parts:d", "5", "streamops:drift:g:of-2:part:d:5"),
        "streamops:drift:g:of-2:merged:d",
    ]


def test_every_is_true_at_most_once_per_interval_until_reset():
    now = [100.0]
    every = Every(0.1, clock=lambda: now[0])
    assert every() and not every()
    now[0] += 0.05
    assert not every()
    now[0] += 0.06
    assert every()
    every.reset()
    assert every()
