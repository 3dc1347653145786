"""The load generator against a real scorer: bounded, every event answered, JSON and PNG."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.kafka_support import REPO
from tests.model_factory import deployment
from tests.scorer_support import v1_signed, world

pytestmark = pytest.mark.integration


def test_loadgen_measures_every_event_through_a_scorer(kafka_bootstrap, prefix, tmp_path):
    scenario = "mean_shift"
    w = world(kafka_bootstrap, prefix, tmp_path)
    v1 = v1_signed(w)
    w.publish(v1)
    w.deploy(deployment(v1["content"]))
    scorer = w.scorer().start()
    try:
        env = dict(
            os.environ, STREAMOPS_TOPIC_PREFIX=prefix, STREAMOPS_KAFKA_BOOTSTRAP=kafka_bootstrap
        )
        done = subprocess.run(
            [sys.executable, "-m", "loadtest.loadgen", "--scenario", scenario, "--rate", "150",
             "--count", "600", "--duration", "30", "--label-delay", "50", "--out", str(tmp_path)],
            cwd=REPO, env=env, capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
    finally:
        scorer.terminate()
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads((tmp_path / f"loadgen-{scenario}.json").read_text())
    assert report["events"] == 600 and report["predictions"] == 600, report
    assert 0 < report["latency_ms_p50"] <= report["latency_ms_p99"] < 30_000
    assert sum(s["events"] for s in report["series"]) == 600
    assert sum(s["predictions"] for s in report["series"]) == 600
    png = (tmp_path / f"loadgen-{scenario}.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 10_000
