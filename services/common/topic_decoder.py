"""Decode a message by the record its topic carries (JSON accepted where the topic allows it)."""

from __future__ import annotations

from typing import Any

from services.common import serde
from services.common.topics import TopicNamer


class TopicDecoder:
    """A runner `Decoder`: picks the expected record and JSON allowance from the topic's spec."""

    def __init__(self, namer: TopicNamer) -> None:
        self._by_topic = {name: (spec.record, spec.json_input) for name, spec in namer.all()}

    def __call__(self, topic: str, value: bytes) -> tuple[str, dict[str, Any]]:
        """Decode `value` read from `topic`; raises PoisonMessage."""
        expected, allow_json = self._by_topic.get(topic, (None, False))
        return serde.decode(value, expected=expected, allow_json=allow_json)
