"""The soak's /proc readings: RSS and open files of a live process, nothing for a gone one."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from loadtest.soak_probe import process_stats

pytestmark = pytest.mark.unit


def test_process_stats_of_a_live_process() -> None:
    before = process_stats(os.getpid())
    assert before is not None
    rss_mb, fds = before
    assert 5 < rss_mb < 10_000
    with open(os.devnull) as _a, open(os.devnull) as _b:
        during = process_stats(os.getpid())
    assert during is not None and during[1] == fds + 2  # the two files just opened


def test_process_stats_of_a_gone_process_is_none() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    assert process_stats(child.pid) is None
