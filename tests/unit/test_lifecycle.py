"""Process lifecycle: a SIGTERM at any point of a service's life is a clean stop.

Each case runs `service_main` in a child process (signal handlers are per process), with a
`load` that stands in for a slow import of the service's app.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
SERVICES = ("scorer", "drift", "registry", "alerting", "trainer")

CHILD = textwrap.dedent(
    """
    import sys, time
    from services.common.lifecycle import service_main
    from services.scorer.config import ScorerSettings

    def run(settings, stop):
        print("RUNNING", file=sys.stderr, flush=True)
        while not stop.wait(0.05):
            pass
        print("LOOP LEFT", file=sys.stderr, flush=True)

    def load():
        print("LOADING", file=sys.stderr, flush=True)
        time.sleep(float(sys.argv[1]))  # a slow import (onnxruntime, a busy machine)
        return ScorerSettings, run

    sys.exit(service_main("scorer", "test", load, ["--metrics-port", "0"]))
    """
)


def _start(load_seconds: float) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, str(load_seconds)],
        cwd=REPO,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for(proc: subprocess.Popen[str], marker: str, timeout_s: float = 30) -> None:
    assert proc.stderr is not None
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            pytest.fail(f"child exited before {marker!r} (code {proc.wait()})")
        if marker in line:
            return
    pytest.fail(f"no {marker!r} within {timeout_s} s")


def _stop_after(marker: str, load_seconds: float) -> tuple[int, str]:
    """Start the child, SIGTERM it once it printed `marker`; (exit code, what it printed after)."""
    proc = _start(load_seconds)
    try:
        _wait_for(proc, marker)
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(30)
        return code, proc.stderr.read() if proc.stderr else ""
    finally:
        proc.kill()


def test_sigterm_while_the_app_imports_exits_cleanly_without_running():
    code, rest = _stop_after("LOADING", load_seconds=2.0)
    assert code == 0, rest
    assert "stop requested while starting" in rest
    assert "RUNNING" not in rest


def test_sigterm_while_running_leaves_the_loop_and_exits_cleanly():
    code, rest = _stop_after("RUNNING", load_seconds=0)
    assert code == 0, rest
    assert "LOOP LEFT" in rest


def test_a_second_signal_exits_at_once():
    proc = _start(load_seconds=30.0)
    try:
        _wait_for(proc, "LOADING")
        proc.send_signal(signal.SIGTERM)
        time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 128 + signal.SIGTERM
    finally:
        proc.kill()


@pytest.mark.parametrize(
    ("entry", "app"),
    [
        *[(f"services.{s}.__main__", f"services.{s}.app") for s in SERVICES],
        ("services.cli.demo_alerting", "services.alerting.app"),
    ],
)
def test_entry_points_import_their_app_only_after_catching_signals(entry, app):
    probe = f"import sys, {entry}; print({app!r} in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "False", out.stderr
