"""Refuse models whose inference would allocate beyond a limit: a probe run before loading (R10).

The guard reads what a model stores; shapes computed at run time (`ConstantOfShape` fed a huge
shape, `Expand`, `Tile` with huge repeats) are invisible to it, and onnxruntime folds constant
subgraphs while it creates a session, so creating a session alone can allocate them. So before
the scorer creates a session, a memory-limited child process creates one and runs it on one row
built from the model's declared inputs (see `probe_server`). A child that dies, fails, runs out
of memory or time, or answers one row with absurdly large outputs means the model is refused
as UNSAFE_MODEL. A probe on one benign row cannot see allocations that depend on input values;
it catches every bomb whose size is written in the graph.

The probe server is one long-lived process per scorer, started at the first probe: each probe is
then a fork of an interpreter that has onnxruntime imported already, not a fresh interpreter,
and never a fork of the busy scorer (its Kafka and onnxruntime threads could hold locks across
a fork).
"""

from __future__ import annotations

import dataclasses
import json
import os
import select
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from services.common.errors import PoisonMessage, Reason

ROOT = Path(__file__).resolve().parents[2]  # the directory holding the `services` package
REPLY_MARGIN_S = 10.0  # on top of the probe's own timeout: the server's fork and answer
# The only environment the probe server inherits: it runs untrusted graphs, so it never sees the
# scorer's settings and secrets (STREAMOPS_*).
INHERITED_ENV = ("PATH", "LD_LIBRARY_PATH", "HOME", "LANG", "TMPDIR")


@dataclasses.dataclass(frozen=True)
class ProbeLimits:
    """What one probe inference may use."""

    memory_bytes: int = 1 << 30  # address space on top of the child's after its imports
    timeout_s: float = 10.0
    max_input_elements: int = 1_000_000  # the synthetic row itself
    max_output_elements: int = 100_000  # per output, for one row


def _unsafe(detail: str) -> PoisonMessage:
    return PoisonMessage(Reason.UNSAFE_MODEL, detail)


class ProbeServer:
    """A `probe_server` child process; requests are serialized, the process restarted if lost."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None

    def _start(self) -> subprocess.Popen[bytes]:
        if self._proc is None or self._proc.poll() is not None:
            path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
            env = {k: os.environ[k] for k in INHERITED_ENV if k in os.environ}
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "services.scorer.probe_server"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                env={**env, "PYTHONPATH": path, "OPENBLAS_NUM_THREADS": "1"},
            )
        return self._proc

    @property
    def pid(self) -> int | None:
        """The server process's id while it runs."""
        return self._proc.pid if self._proc is not None else None

    def stop(self) -> None:
        """End the server process (it also ends by itself when this process exits)."""
        with self._lock:
            self._stop()

    def _stop(self) -> None:
        if self._proc is not None:
            self._proc.kill()
            self._proc.wait()
            self._proc = None

    def ask(self, data: bytes, limits: ProbeLimits) -> dict[str, Any]:
        """One probe's verdict: {"ok": bool, "detail": str, "outputs": [elements, ...]}."""
        header = {"size": len(data), "limits": dataclasses.asdict(limits)}
        with self._lock:
            proc = self._start()
            assert proc.stdin is not None and proc.stdout is not None
            try:
                proc.stdin.write(json.dumps(header).encode() + b"\n" + data)
                proc.stdin.flush()
                wait_s = limits.timeout_s + REPLY_MARGIN_S
                ready, _, _ = select.select([proc.stdout], [], [], wait_s)
                line = proc.stdout.readline() if ready else b""
                if not line:
                    raise OSError("no answer")
                return json.loads(line)
            except (OSError, ValueError) as exc:
                self._stop()  # a fresh server for the next probe
                return {"ok": False, "detail": f"probe server failed: {exc!r}"[:300]}


_SERVER = ProbeServer()


def probe_model(data: bytes, limits: ProbeLimits | None = None) -> None:
    """Run the model once in a limited child; raises PoisonMessage(UNSAFE_MODEL) if that fails."""
    limits = limits or ProbeLimits()
    verdict = _SERVER.ask(data, limits)
    if not verdict.get("ok"):
        raise _unsafe(f"probe inference failed: {verdict.get('detail', '?')}")
    worst = max(verdict.get("outputs") or [0])
    if worst > limits.max_output_elements:
        raise _unsafe(f"probe inference of one row produced an output of {worst} elements")
