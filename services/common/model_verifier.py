"""Verify a ModelPublished record's Ed25519 signature before anything else looks at the model.

The signature covers the canonical encoding of `content` (schemaless Avro with sorted map keys),
so re-encoding the decoded content reproduces the signed bytes exactly; one flipped byte
anywhere in the content, an unknown key id or a missing signature is refused (R9).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from services.common import serde, signing
from services.common.errors import PoisonMessage, Reason


class ModelVerifier:
    """Checks ModelPublished records against the trusted public keys."""

    def __init__(self, trusted: Mapping[str, Ed25519PublicKey]) -> None:
        self.trusted = dict(trusted)

    def __call__(self, record: Mapping[str, Any]) -> dict[str, Any]:
        """The verified content; raises PoisonMessage(BAD_SIGNATURE) otherwise."""
        content = record.get("content")
        if not isinstance(content, dict):
            raise PoisonMessage(Reason.WRONG_TYPE, "ModelPublished without content")
        payload = serde.canonical_bytes("ModelContent", content)
        signing.verify(
            self.trusted, record.get("key_id", ""), payload, record.get("signature") or b""
        )
        return content
