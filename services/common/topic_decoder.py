"""Decode a message by the record its topic carries (JSON accepted where the topic allows it)."""

from __future__ import annotations

from typing import Any

from services.common import serde
from services.common.topics import TopicNamer


class TopicDecoder:
    """A runner `Decoder`: picks the expected record and JSON allowance from the topic's spec."""

    def __init__(self, namer: TopicNamer) -> None:
        codec = serde.default_serde()
        self._by_topic = {
            name: codec.decoder_for(spec.record, allow_json=spec.json_input)
            for name, spec in namer.all()
        }
        self._any = codec.decode

    def __call__(self, topic: str, value: bytes) -> tuple[str, dict[str, Any]]:
        """Decode `value` read from `topic`; raises PoisonMessage."""
        decode = self._by_topic.get(topic)
        return self._any(value) if decode is None else decode(value)
