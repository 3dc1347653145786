"""A watchdog for calls that may block for good: past a deadline the process exits.

Some librdkafka calls ignore their own timeout (``send_offsets_to_transaction`` after the broker
was killed under it blocks forever: confluentinc/librdkafka #5456, #5511), and a thread blocked in
C cannot be interrupted, not even by SIGTERM's stop event. A process stuck that way serves
nothing and holds its partitions. The watchdog turns it into a crash: the supervisor restarts the
process, and the new instance fences the old one's transaction (``init_transactions``), whose
outputs are never read. Exiting loses nothing that was not already uncommitted.

>>> import threading
>>> fired = threading.Event()
>>> dog = Watchdog(0.05, on_expire=lambda what, s: fired.set(), poll_s=0.01)
>>> with dog.guard("quick call"):
...     pass
>>> fired.wait(0.2)
False
>>> with dog.guard("stuck call"):
...     fired.wait(1.0)
True
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator

log = logging.getLogger(__name__)

# The process's exit code when the watchdog fires (as a fatal error's: lifecycle exits 1 too).
EXIT_STUCK = 1


def _exit(what: str, seconds: float) -> None:
    log.critical("%s blocked for %.0f s: exiting to be restarted", what, seconds)
    for handler in logging.getLogger().handlers:
        handler.flush()
    sys.stderr.flush()
    os._exit(EXIT_STUCK)


class Watchdog:
    """Calls ``on_expire(what, seconds)`` (by default: log and exit the process) when a guarded
    block outlives ``limit_s``; one background thread, started at the first guard."""

    def __init__(
        self,
        limit_s: float,
        on_expire: Callable[[str, float], None] = _exit,
        poll_s: float = 0.5,
    ) -> None:
        self.limit_s = limit_s
        self._on_expire = on_expire
        self._poll_s = poll_s
        self._armed: tuple[str, float] | None = None  # (what, monotonic start)
        self._thread: threading.Thread | None = None

    @contextlib.contextmanager
    def guard(self, what: str) -> Iterator[None]:
        """Watch the block: if it runs longer than the limit, the watchdog fires."""
        self.arm(what)
        try:
            yield
        finally:
            self._armed = None

    def arm(self, what: str) -> None:
        """Fire unless the process is gone within the limit (a shutdown that must end)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._watch, name="watchdog", daemon=True)
            self._thread.start()
        self._armed = (what, time.monotonic())

    def _watch(self) -> None:
        while True:
            time.sleep(self._poll_s)
            armed = self._armed
            if armed is None:
                continue
            what, started = armed
            elapsed = time.monotonic() - started
            if elapsed > self.limit_s:
                self._armed = None
                self._on_expire(what, elapsed)
