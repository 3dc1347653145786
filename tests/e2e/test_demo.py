"""The demo scenario as a user runs it: `streamops demo` as a process, on the real broker."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from tests.kafka_support import REPO

pytestmark = pytest.mark.e2e


def test_demo_relays_every_event_and_dead_letters_the_malformed_one(kafka_bootstrap, prefix):
    env = dict(
        os.environ,
        PYTHONPATH=str(REPO),
        STREAMOPS_TOPIC_PREFIX=prefix,
        STREAMOPS_KAFKA_BOOTSTRAP=kafka_bootstrap,
    )
    done = subprocess.run(
        [sys.executable, "-m", "services.cli", "demo", "--events", "800"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    out = done.stdout + done.stderr
    assert done.returncode == 0, out
    assert re.search(r"relayed \(this run\)\s+800\b", out), out
    malformed = r"malformed event\s+\S+events\[\d\]@\d+ stage=decode reason=wrong_type"
    assert re.search(malformed, out), out
    assert "demo: OK" in out
    for step in range(1, 6):
        assert f"[{step}/5]" in out, f"progress step {step} missing:\n{out}"
