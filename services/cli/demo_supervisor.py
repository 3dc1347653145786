"""The demo's process supervisor: starts services as child processes, watches them, stops them.

Each child is `python -m <module> <args>` in its own session (so `--keep` can leave it running
after the demo exits), with stdout and stderr appended to `<var_dir>/log/demo-<name>.log`. A
child that exits while the demo still needs it is a failure with its exit code and the tail of
its log; the demo does not restart it, so the failure is loud. The PIDs go to a file so that
`streamops demo --stop` can end a kept demo later.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

from services.common.errors import StreamopsError
from services.common.settings import REPO_ROOT


class ServiceDied(StreamopsError):
    """A supervised service exited while the demo needed it."""


@dataclasses.dataclass
class Child:
    """One supervised process."""

    name: str
    proc: subprocess.Popen[bytes]
    log: Path

    def tail(self, lines: int = 25) -> str:
        """The last lines of the child's log."""
        try:
            text = self.log.read_text(errors="replace").splitlines()
        except OSError:
            return "(no log)"
        return "\n".join(text[-lines:])


class Supervisor:
    """Starts, checks and stops the demo's service processes."""

    def __init__(self, log_dir: Path, pid_file: Path, env: Mapping[str, str]) -> None:
        self.log_dir = log_dir
        self.pid_file = pid_file
        self.env = dict(env, PYTHONUNBUFFERED="1")
        self.children: list[Child] = []
        log_dir.mkdir(parents=True, exist_ok=True)

    def start(
        self, name: str, module: str, args: list[str], env: Mapping[str, str] | None = None
    ) -> Child:
        """Start `python -m module args` with its output in `<log_dir>/demo-<name>.log`."""
        path = self.log_dir / f"demo-{name}.log"
        with path.open("ab") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", module, *args],
                cwd=REPO_ROOT,
                env={**self.env, **(env or {})},
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        child = Child(name, proc, path)
        self.children.append(child)
        self._write_pids()
        return child

    def check(self) -> None:
        """Raise ServiceDied if any child has exited."""
        for child in self.children:
            code = child.proc.poll()
            if code is not None:
                raise ServiceDied(
                    f"service {child.name} exited with code {code} (log {child.log}); "
                    f"last lines:\n{child.tail()}"
                )

    def stop_all(self, timeout_s: float = 30.0) -> dict[str, int | None]:
        """SIGTERM every child (newest first), wait, SIGKILL stragglers; exit codes by name."""
        for child in reversed(self.children):
            if child.proc.poll() is None:
                child.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        codes: dict[str, int | None] = {}
        for child in reversed(self.children):
            try:
                codes[child.name] = child.proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.proc.kill()
                codes[child.name] = child.proc.wait(10)
        self.pid_file.unlink(missing_ok=True)
        return codes

    def _write_pids(self) -> None:
        self.pid_file.parent.mkdir(parents=True, exist_ok=True)
        lines = [f"{c.proc.pid} {c.name} {c.proc.args[2]}" for c in self.children]
        self.pid_file.write_text("\n".join(lines) + "\n")


def stop_kept(pid_file: Path, timeout_s: float = 30.0) -> list[str]:
    """End the processes a `--keep` demo left running (from its PID file); what was stopped."""
    if not pid_file.exists():
        return []
    entries = [line.split() for line in pid_file.read_text().splitlines() if line]
    stopped = []
    for pid_text, name, module in entries:
        pid = int(pid_text)
        if module not in _cmdline(pid):
            continue  # gone, and the PID may belong to someone else by now
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            continue
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and _alive(pid):
            time.sleep(0.2)
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)
        stopped.append(f"{name} (pid {pid})")
    pid_file.unlink(missing_ok=True)
    return stopped


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
