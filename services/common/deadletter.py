"""Dead letters: the original bytes verbatim, where they came from, and why they were refused."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from services.common.errors import Reason

Encoder = Callable[[str, dict[str, Any]], bytes]

MAX_ERROR_CHARS = 2000


class DeadLetterWriter:
    """Builds `DeadLetter` records for one service's dead-letter topic."""

    def __init__(self, topic: str, service: str, encode: Encoder) -> None:
        self.topic = topic
        self.service = service
        self._encode = encode

    def record(
        self,
        source_topic: str,
        partition: int,
        offset: int,
        key: bytes | None,
        original: bytes,
        stage: str,
        reason: Reason,
        error: str,
        attempts: int = 1,
    ) -> dict[str, Any]:
        """The DeadLetter record as a dict."""
        return {
            "source_topic": source_topic,
            "source_partition": partition,
            "source_offset": offset,
            "source_key": key,
            "original": original,
            "stage": stage,
            "reason": reason.value,
            "error": error[:MAX_ERROR_CHARS],
            "service": self.service,
            "failed_at": int(time.time() * 1000),
            "attempts": attempts,
        }

    def encode(self, record: dict[str, Any]) -> bytes:
        """Single-object encoding of a DeadLetter record."""
        return self._encode("DeadLetter", record)
