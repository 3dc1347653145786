"""The soak's private stack: its own Kafka and Redis (infra scripts, other ports, var/soak) and a
supervisor that restarts any service that exits, as a production supervisor would.

The broker and Redis are started with `infra/kafka/kafka.sh` and `infra/redis/redis.sh` under
`STREAMOPS_VAR_DIR=var/soak` and free ports, so pausing or killing them never touches the
development stack on 9092/6379.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from services.cli.demo_supervisor import Supervisor
from services.common.settings import REPO_ROOT


class InfraError(RuntimeError):
    """The private broker or Redis could not be started or found."""


@dataclasses.dataclass
class Infra:
    """Start, stop, pause and kill one infra part (`kafka` or `redis`) through its script."""

    part: str
    env: Mapping[str, str]  # the whole environment of the script (the private stack's ports)
    var_dir: Path

    def _script(self, action: str, timeout_s: float = 180.0) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["bash", str(REPO_ROOT / "infra" / self.part / f"{self.part}.sh"), action],
            env=dict(self.env),
            cwd=REPO_ROOT,
            capture_output=True,
            check=False,
            text=True,
            timeout=timeout_s,
        )

    def start(self) -> None:
        """Start and wait until it answers; InfraError with the script's output if not."""
        done = self._script("start")
        if done.returncode != 0:
            raise InfraError(f"{self.part} did not start:\n{done.stdout}{done.stderr}")

    def stop(self) -> None:
        """Stop it (SIGTERM, then SIGKILL by the script)."""
        self._script("stop", timeout_s=90.0)

    def kill(self) -> None:
        """SIGKILL at once; the data dir stays."""
        self._script("kill", timeout_s=30.0)

    def pid(self) -> int:
        """The running process id, from the pid file the script keeps."""
        path = self.var_dir / self.part / f"{self.part}.pid"
        try:
            return int(path.read_text().strip())
        except (OSError, ValueError):
            raise InfraError(f"no pid file for {self.part} at {path}") from None

    def signal(self, sig: signal.Signals) -> None:
        """Send `sig` to the running process (SIGSTOP/SIGCONT for a pause)."""
        os.kill(self.pid(), sig)


@dataclasses.dataclass(frozen=True)
class Spec:
    """How to start one service."""

    name: str
    module: str
    args: list[str]
    env: Mapping[str, str] | None = None


class Restarter:
    """Keeps every service running: a child that exits is started again within a second."""

    def __init__(self, supervisor: Supervisor, say: Callable[[str], None]) -> None:
        self.supervisor = supervisor
        self.say = say
        self.specs: dict[str, Spec] = {}
        self.restarts: dict[str, int] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="soak-restarter", daemon=True)

    def start(self, spec: Spec) -> None:
        """Start one service and keep it running."""
        with self._lock:
            self.specs[spec.name] = spec
            self.restarts.setdefault(spec.name, 0)
            self.supervisor.start(spec.name, spec.module, spec.args, spec.env)

    def watch(self) -> Restarter:
        """Start restarting exited services in the background."""
        self._thread.start()
        return self

    def pids(self) -> dict[str, int]:
        """The live process id of each service."""
        with self._lock:
            return {c.name: c.proc.pid for c in self.supervisor.children if c.proc.poll() is None}

    def kill(self, name: str) -> int:
        """SIGKILL one service (the restarter brings it back); the pid killed."""
        with self._lock:
            child = next(c for c in self.supervisor.children if c.name == name)
            child.proc.kill()
            return child.proc.pid

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            with self._lock:
                dead = [c for c in self.supervisor.children if c.proc.poll() is not None]
                for child in dead:
                    self.supervisor.children.remove(child)
                    spec = self.specs[child.name]
                    self.restarts[child.name] += 1
                    self.supervisor.start(spec.name, spec.module, spec.args, spec.env)
            for child in dead:
                self.say(f"supervisor: {child.name} exited ({child.proc.returncode}); restarted")

    def stop_all(self) -> dict[str, int | None]:
        """Stop restarting, then stop every service; exit codes by name."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5)
        with self._lock:
            return self.supervisor.stop_all()


def wait_until(check: Callable[[], bool], timeout_s: float, step_s: float = 0.5) -> float | None:
    """Seconds until `check()` is true (exceptions count as false), or None after `timeout_s`."""
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        try:
            done = check()
        except Exception:  # noqa: BLE001 - a probe failing is "not yet", whatever it raised
            done = False
        if done:
            return time.monotonic() - started
        time.sleep(step_s)
    return None
