"""The closed loop as a user runs it: `streamops demo` as a process, scaled down, real broker.

Every service runs as a process; the assertions read the demo's own timeline and report:
breaches soon after each injection, a signed webhook, one retrain request, v2 with v1 as parent
trained on post-concept-drift events only, a policy promotion on evidence, the swap, and every
valid event answered (the malformed ones dead-lettered).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time

import pytest

from tests.kafka_support import REPO

pytestmark = pytest.mark.e2e

MILESTONES = [
    "data drift injected",
    "data drift detected",
    "signed webhook received by the sink",
    "concept drift injected",
    "concept drift detected",
    "retrain requested",
    "v2 trained on the stream slice and published",
    "v2 scoring in shadow as a challenger",
    "v2 promoted by the release policy on evidence",
    "scorer hot-swapped to v2",
    "accuracy measured after the swap",
]


def _row(out: str, name: str) -> str:
    found = re.search(rf"^ +{re.escape(name)}  +(.*)$", out, re.M)
    assert found, f"report row {name!r} missing:\n{out}"
    return found.group(1)


def test_demo_closes_the_loop(kafka_bootstrap, redis_password, prefix):
    env = dict(
        os.environ,
        PYTHONPATH=str(REPO),
        STREAMOPS_TOPIC_PREFIX=prefix,
        STREAMOPS_KAFKA_BOOTSTRAP=kafka_bootstrap,
    )
    args = ["--data-drift-at", "1500", "--concept-drift-at", "3000", "--timeout", "280"]
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "services.cli", "demo", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    out = done.stdout + done.stderr
    assert done.returncode == 0, out
    assert "demo: OK, the loop closed" in out
    for step in range(1, 8):
        assert f"[{step}/7]" in out, f"progress step {step} missing:\n{out}"

    # the timeline: every milestone, in order
    times = []
    for label in MILESTONES:
        found = re.search(rf"^  t\+\s*([\d.]+)s\s+{re.escape(label)}$", out, re.M)
        assert found, f"milestone {label!r} not reached:\n{out}"
        times.append(float(found.group(1)))
    assert times == sorted(times), f"milestones out of order {times}:\n{out}"

    # each drift detected within two windows (the concept's labels come 3 s late)
    for name, at in (("data drift", 1500), ("concept drift", 3000)):
        row = _row(out, name)
        m = re.search(
            rf"injected at event {at:,}; detected by (\S+) [\d.]+ after (\d+) window", row
        )
        assert m and int(m.group(2)) <= 2, row
    assert "psi[loan]" in _row(out, "data drift")
    assert "accuracy" in _row(out, "concept drift")
    assert "before the injection" not in out  # no false alarm

    assert re.match(
        r"[1-9]\d* signed webhook\(s\) verified by the sink: .*firing",
        _row(out, "alerts delivered"),
    )
    assert _row(out, "retrain requests") == "1"
    lineage = _row(out, "v2 lineage")
    assert "(v1); 500 rows from the stream" in lineage, lineage
    assert _row(out, "slice events") == "500 concept_drift"
    assert "challenger" in out and re.search(r"predictions v2\s+[\d,]+ champion \(served\)", out)

    before = float(_row(out, "accuracy before drift").split()[0])
    after = float(_row(out, "accuracy after drift").split()[0])
    swapped = float(_row(out, "accuracy after swap").split()[0])
    assert before > 0.9 and after < 0.75 and swapped > 0.9, (before, after, swapped)
    # promoted by the registry's release controller, on the paired test
    evidence = _row(out, "promotion evidence")
    assert evidence.startswith("release policy: promote credit v2: on ") and "McNemar" in evidence

    # nothing lost: every valid event answered; the malformed ones dead-lettered by both readers
    events = int(_row(out, "events").split()[0].replace(",", ""))
    answered = _row(out, "served answers")
    assert answered.startswith(f"{events:,} events answered"), answered
    assert _row(out, "dead letters") == (
        "3 bad source records, refused by drift and scorer (wrong_type); 6 dead letters"
    )
    assert "services stopped\n" in out or out.rstrip().endswith("services stopped"), out[-500:]
    print(f"\ndemo e2e: {time.monotonic() - started:.0f} s")
