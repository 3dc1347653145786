"""Deployment records signed by the registry's own key, and their verification by readers.

The registry signs every Deployment it publishes with its Ed25519 key (a key of its own, never a
trainer's model key); `key_id` and `signature` travel in the record. The signature covers
`serde.canonical_bytes("Deployment", record, without=SIGNATURE_FIELDS)`: the record's canonical
encoding without those two fields, which any reader recomputes from the decoded record. Readers
trust only the public keys of the registry's key directory (`deployment_keys_dir`, by default
`<var_dir>/keys/registry`): a record that is unsigned, names a key id not trusted there, or whose
signature does not match its content is refused with `Reason.BAD_SIGNATURE`.

>>> import tempfile
>>> from services.common import signing
>>> folder = tempfile.mkdtemp()
>>> key, _made = signing.ensure_keypair(folder)
>>> verify = DeploymentVerifier.from_dir(folder)
>>> record = {"name": "d", "revision": 1, "updated_at": 1, "updated_by": "ann", "reason": "r",
...           "champion": {"model_name": "m", "model_id": "a", "version": 1},
...           "challengers": [], "mode": "shadow", "humility": [], "thresholds": [],
...           "policy": {"auto_approve": False, "retrain_after_windows": 3}}
>>> verify(sign(record, key))["revision"]
1
>>> verify({**sign(record, key), "revision": 2})  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
services.common.errors.PoisonMessage: bad_signature: ...
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from services.common import serde, signing
from services.common.errors import PoisonMessage

log = logging.getLogger(__name__)

SIGNATURE_FIELDS = ("key_id", "signature")
TOLD_AT_MOST = 100  # distinct problems explained in the log (the dead letters count them all)


def signed_bytes(record: Mapping[str, Any]) -> bytes:
    """What a Deployment's signature covers: its canonical encoding without the signature."""
    return serde.canonical_bytes("Deployment", record, without=SIGNATURE_FIELDS)


def sign(record: Mapping[str, Any], key: signing.SigningKey) -> dict[str, Any]:
    """The record with `key_id` and `signature` by `key` (any earlier signature replaced)."""
    content = unsigned(record)
    return {**content, "key_id": key.key_id, "signature": key.sign(signed_bytes(content))}


def unsigned(record: Mapping[str, Any]) -> dict[str, Any]:
    """The record without its signature fields (what the registry keeps and compares)."""
    return {k: v for k, v in record.items() if k not in SIGNATURE_FIELDS}


def trusted_keys(directory: str | os.PathLike[str]) -> dict[str, Ed25519PublicKey]:
    """The registry's public keys in `directory`; ConfigError saying what to do when none."""
    return signing.required_public_keys(
        directory,
        f"no registry public key (*.pub) in {Path(directory)}, so no Deployment record could be "
        "verified; start the registry once (it makes its key pair there) or run `streamops "
        "infra up`, or copy the registry's .pub there (STREAMOPS_DEPLOYMENT_KEYS_DIR)",
    )


class DeploymentVerifier:
    """Checks Deployment records against the registry's trusted public keys."""

    def __init__(self, trusted: Mapping[str, Ed25519PublicKey], directory: str = "") -> None:
        self.trusted = dict(trusted)
        self.directory = directory or "the trusted deployment keys directory"
        self._told: set[tuple[str, str]] = set()
        self._lock = threading.Lock()

    @classmethod
    def from_dir(cls, directory: str | os.PathLike[str]) -> DeploymentVerifier:
        """A verifier trusting the `.pub` files of `directory` (ConfigError when none)."""
        return cls(trusted_keys(directory), str(directory))

    def __call__(self, record: Mapping[str, Any]) -> dict[str, Any]:
        """The record without its signature fields; PoisonMessage(BAD_SIGNATURE) otherwise."""
        key_id = str(record.get("key_id") or "")
        try:
            signing.verify(self.trusted, key_id, signed_bytes(record), record.get("signature"))
        except PoisonMessage as exc:
            self._tell(record, key_id, exc)
            raise
        return unsigned(record)

    def _tell(self, record: Mapping[str, Any], key_id: str, exc: PoisonMessage) -> None:
        """Explain a kind of refusal once (per key id), with what to do about it."""
        if not record.get("signature"):
            problem = "unsigned"
            fix = (
                "the registry signs every deployment it writes, so another process or a registry "
                "older than signed deployments wrote it (approve a change to the deployment to "
                "publish a signed revision)"
            )
        elif key_id not in self.trusted:
            problem = "unknown_key"
            fix = (
                f"if the registry signs with key {key_id[:16]!r}, copy its .pub (from the "
                f"registry's deployment keys directory) into {self.directory} and restart"
            )
        else:
            problem, fix = "mismatch", "the record was changed after the registry signed it"
        with self._lock:
            if (problem, key_id) in self._told or len(self._told) >= TOLD_AT_MOST:
                return
            self._told.add((problem, key_id))
        log.error(
            "Deployment %s r%s refused (%s); %s. Further records refused for the same reason "
            "are only dead-lettered",
            str(record.get("name"))[:128],
            record.get("revision"),
            exc.detail,
            fix,
        )
