"""Applies one followed control-plane record: decode, apply with retries, dead-letter the rest.

A record is never skipped silently. An undecodable record, a record its handler refuses
(`PoisonMessage`) and a record whose handler keeps raising (`attempts` times, with a short
backoff, because a blip is usually transient) are each handed to the dead-letter sink with the
original bytes, its coordinates, the stage and a bounded reason, and counted.

A `RetryableError` (the handler's store, e.g. Redis, is down) is not the record's fault: the
applier waits and tries the same record again, with a backoff capped at `max_backoff_s`, until
it applies or the follower is stopped. Control records are applied in order per partition, so
this pauses the follower instead of dead-lettering good records; `stalled` says so meanwhile, and
a replay that cannot finish makes `wait_ready` (and so the service's start) fail loudly.

>>> letters = []
>>> def apply(topic, record):
...     raise ValueError("no such field")
>>> applier = RecordApplier(lambda t, v: ("R", {}), apply, dead_letter=letters.append,
...                         backoff_s=0, sleep=lambda s: None)
>>> applier.handle("models", 0, 7, b"k", b"raw")
False
>>> (letters[0].stage, letters[0].reason.value, letters[0].attempts, applier.dead_lettered)
('apply', 'handler_failed', 3, 1)
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable
from typing import Any

from services.common.deadletter import DeadLetterWriter
from services.common.errors import PoisonMessage, Reason, RetryableError

log = logging.getLogger(__name__)

Apply = Callable[[str, dict[str, Any]], None]  # (topic, decoded record)
Decode = Callable[[str, bytes], tuple[str, dict[str, Any]]]
OnPoison = Callable[[str, bytes, PoisonMessage], None]


@dataclasses.dataclass(frozen=True)
class Refusal:
    """A followed record given up on: where it came from, its bytes verbatim, and why."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    stage: str  # decode | apply
    reason: Reason
    error: str
    attempts: int

    def dead_letter(self, writer: DeadLetterWriter) -> dict[str, Any]:
        """The DeadLetter record of this refusal, as ``writer``'s service writes it."""
        return writer.record(
            self.topic,
            self.partition,
            self.offset,
            self.key,
            self.value,
            self.stage,
            self.reason,
            self.error,
            self.attempts,
        )


DeadLetterSink = Callable[[Refusal], None]


class RecordApplier:
    """Decodes and applies records one at a time; dead-letters those that can never apply."""

    def __init__(
        self,
        decode: Decode,
        apply: Apply,
        on_poison: OnPoison | None = None,
        dead_letter: DeadLetterSink | None = None,
        attempts: int = 3,
        backoff_s: float = 0.1,
        max_backoff_s: float = 5.0,
        stop: threading.Event | None = None,
        sleep: Callable[[float], Any] | None = None,
    ) -> None:
        self._decode = decode
        self._apply = apply
        self._on_poison = on_poison
        self._dead_letter = dead_letter
        self._attempts = max(1, attempts)
        self._backoff_s = backoff_s
        self._max_backoff_s = max_backoff_s
        self._stop = stop or threading.Event()
        # Waiting on the stop event (not time.sleep) lets a stop end a retry wait at once.
        self._sleep = sleep or self._stop.wait
        self.applied = 0
        self.dead_lettered = 0
        self.retries = 0
        self.stalled = False

    def handle(
        self, topic: str, partition: int, offset: int, key: bytes | None, value: bytes | None
    ) -> bool:
        """Apply one record; False when it was refused (dead-lettered) or the follower stopped."""
        if value is None:  # a tombstone on a compacted topic: nothing to apply
            return False
        try:
            _name, record = self._decode(topic, value)
        except PoisonMessage as exc:
            log.warning("undecodable record on %s[%d]@%d: %s", topic, partition, offset, exc)
            if self._on_poison is not None:
                try:
                    self._on_poison(topic, value, exc)
                except Exception:  # the dead letter below still records it
                    log.exception("on_poison failed for %s[%d]@%d", topic, partition, offset)
            self._refuse(
                Refusal(topic, partition, offset, key, value, "decode", exc.reason, exc.detail, 1)
            )
            return False
        failures = 0
        waits = 0
        while True:
            try:
                self._apply(topic, record)
            except PoisonMessage as exc:
                refusal = Refusal(
                    topic, partition, offset, key, value, "apply", exc.reason, exc.detail, 1
                )
                self._refuse(refusal)
                return False
            except RetryableError as exc:
                if self._stop.is_set():
                    return False
                self.stalled = True
                self.retries += 1
                delay = min(self._max_backoff_s, self._backoff_s * 2**waits)
                waits += 1
                log.warning(
                    "applying %s[%d]@%d waits for its store (%s); retry in %.1f s",
                    topic,
                    partition,
                    offset,
                    exc,
                    delay,
                )
                self._sleep(delay)
                continue
            except Exception as exc:
                if self._stop.is_set():
                    return False  # the next start replays it from the beginning anyway
                failures += 1
                if failures >= self._attempts:
                    log.exception("applying %s[%d]@%d failed", topic, partition, offset)
                    error = f"{type(exc).__name__}: {exc}"
                    self._refuse(
                        Refusal(
                            topic,
                            partition,
                            offset,
                            key,
                            value,
                            "apply",
                            Reason.HANDLER_FAILED,
                            error,
                            failures,
                        )
                    )
                    return False
                self.retries += 1
                self._sleep(min(self._max_backoff_s, self._backoff_s * 2 ** (failures - 1)))
                continue
            self.stalled = False
            self.applied += 1
            return True

    def _refuse(self, refusal: Refusal) -> None:
        self.dead_lettered += 1
        log.error(
            "dead-lettering %s[%d]@%d (%s at %s): %s",
            refusal.topic,
            refusal.partition,
            refusal.offset,
            refusal.reason.value,
            refusal.stage,
            refusal.error[:300],
        )
        if self._dead_letter is None:
            return
        try:
            self._dead_letter(refusal)
        except Exception:  # a sink failure must not stop the follower; the count above stays
            log.exception(
                "the dead-letter sink failed for %s[%d]", refusal.topic, refusal.partition
            )
