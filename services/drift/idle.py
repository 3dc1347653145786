"""Which deployments have gone quiet: nothing received for the idle time, by the wall clock.

Windows close on events (a count window when full, a time window when the watermark passes
it), so the last windows of a stream that stops would stay open for good. The drift loop
tells the watch which deployments each batch brought records for (events, predictions or
actuals); every ``every_s`` it asks which have had none for ``idle_s`` and closes their open
windows (``DeploymentMonitor.close_idle``), in a transaction of their own.

The watch lives in memory only: when the state is loaded (start, restart, recovery) every
deployment's quiet time starts again, so the time a process was down never counts as quiet
and a restarted process first reads its backlog into the windows.

>>> now = [0.0]
>>> watch = IdleWatch(60, clock=lambda: now[0])
>>> watch.reset(["a", "b"]); now[0] = 30.0; watch.heard(["b"])
>>> now[0] = 61.0; watch.quiet(["a", "b"])
(61000, ['a'])
>>> now[0] = 61.5; watch.quiet(["a", "b"])  # asked again within every_s: not yet
(61500, [])
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable


class IdleWatch:
    """When each deployment last brought a record, and which have been quiet for ``idle_s``."""

    def __init__(
        self, idle_s: float, clock: Callable[[], float] = time.time, every_s: float = 1.0
    ) -> None:
        self.idle_s, self.clock, self.every_s = idle_s, clock, every_s
        self.last: dict[str, float] = {}  # wall clock seconds, by deployment (monitored only)
        self._asked = float("-inf")

    @property
    def idle_ms(self) -> int:
        """The idle time in milliseconds."""
        return int(self.idle_s * 1000)

    def reset(self, deployments: Iterable[str]) -> None:
        """The state was loaded: these deployments' quiet time starts now."""
        now = self.clock()
        self.last = dict.fromkeys(deployments, now)

    def heard(self, deployments: Iterable[str]) -> None:
        """A batch brought records for these deployments."""
        now = self.clock()
        for d in deployments:
            self.last[d] = now

    def quiet(self, deployments: Iterable[str]) -> tuple[int, list[str]]:
        """(the wall clock in ms, the deployments quiet for ``idle_s``), at most once every
        ``every_s`` (else none); never any when ``idle_s`` is 0."""
        now = self.clock()
        if not self.idle_s or now - self._asked < self.every_s:
            return int(now * 1000), []
        self._asked = now
        quiet = []
        for d in deployments:
            if now - self.last.setdefault(d, now) >= self.idle_s:
                quiet.append(d)
        return int(now * 1000), quiet
