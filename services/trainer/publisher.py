"""Sign a ModelContent and publish it to the compacted `models` topic, delivery confirmed.

The signature is Ed25519 over ``serde.canonical_bytes("ModelContent", content)``, the exact
bytes scorers and the registry re-derive to verify. The producer is idempotent with acks=all
and a 32 MiB message limit; `publish` returns only once the broker acknowledged the record.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from confluent_kafka import KafkaError, Message, Producer

from services.common import serde, signing
from services.common.errors import ConfigError, RetryableError

KEYS_HINT = "create one with `streamops keys init`"


def load_signing_key(keys_dir: Path) -> signing.SigningKey:
    """The one private key in ``keys_dir``; ConfigError telling how to create it otherwise."""
    keys = sorted(keys_dir.glob("*.key")) if keys_dir.is_dir() else []
    if not keys:
        raise ConfigError(f"no signing key in {keys_dir}; {KEYS_HINT}")
    if len(keys) > 1:
        names = ", ".join(k.name for k in keys)
        raise ConfigError(f"several private keys in {keys_dir} ({names}); keep exactly one")
    return signing.load_private_key(keys[0])


def signed_record(content: Mapping[str, Any], key: signing.SigningKey) -> dict[str, Any]:
    """The ModelPublished record: content, key id and signature over its canonical bytes."""
    payload = serde.canonical_bytes("ModelContent", content)
    return {"content": dict(content), "key_id": key.key_id, "signature": key.sign(payload)}


@dataclasses.dataclass(frozen=True)
class Delivery:
    """Where a published record landed and how big it was."""

    topic: str
    partition: int
    offset: int
    size_bytes: int


def model_key(content: Mapping[str, Any]) -> str:
    """`<name>@<version>`: compaction keeps every version (a key per version), see decisions."""
    return f"{content['name']}@{content['version']}"


class ModelPublisher:
    """Produces ModelPublished records (key = model name) and waits for each acknowledgement."""

    def __init__(self, producer_conf: dict[str, Any], topic: str, timeout_s: float = 60.0) -> None:
        self._producer = Producer(producer_conf)
        self.topic = topic
        self.timeout_s = timeout_s

    def publish(self, record: Mapping[str, Any]) -> Delivery:
        """Encode, produce and flush; RetryableError if the broker did not acknowledge it."""
        value = serde.encode("ModelPublished", record)
        result: dict[str, Any] = {}

        def on_delivery(err: KafkaError | None, msg: Message) -> None:
            result["err"], result["msg"] = err, msg

        self._producer.produce(
            self.topic,
            value,
            model_key(record["content"]),
            headers=[serde.fingerprint_header("ModelPublished")],
            on_delivery=on_delivery,
        )
        remaining = self._producer.flush(self.timeout_s)
        if remaining or "msg" not in result:
            raise RetryableError(
                f"model record not acknowledged within {self.timeout_s:.0f} s; its delivery is "
                "unknown: check the models topic before publishing again"
            )
        if result["err"] is not None:
            raise RetryableError(f"publishing to {self.topic} failed: {result['err']}")
        msg = result["msg"]
        return Delivery(msg.topic(), msg.partition(), msg.offset(), len(value))
