"""Signed records for tests: one model key (the trainer's) and one Deployment key (the registry's)
per test session, in a temporary directory that services started by tests are pointed at."""

from __future__ import annotations

import atexit
import dataclasses
import functools
import shutil
import tempfile
from pathlib import Path
from typing import Any

from services.common import deployment_verifier, serde, signing
from services.common.deployment_verifier import DeploymentVerifier


@dataclasses.dataclass(frozen=True)
class SessionKeys:
    """The session's key pairs and the directories holding their public keys."""

    models_dir: Path
    deployments_dir: Path
    model: signing.SigningKey
    registry: signing.SigningKey

    def flags(self) -> dict[str, str]:
        """Settings that make a scorer or drift process trust these keys."""
        return {
            "trusted_keys_dir": str(self.models_dir),
            "deployment_keys_dir": str(self.deployments_dir),
        }


@functools.cache
def session_keys() -> SessionKeys:
    """The session's keys (made at first use, removed at exit)."""
    root = Path(tempfile.mkdtemp(prefix="streamops-test-keys-"))
    atexit.register(shutil.rmtree, root, True)
    model, _ = signing.ensure_keypair(root / "models")
    registry, _ = signing.ensure_keypair(root / "registry")
    return SessionKeys(root / "models", root / "registry", model, registry)


def signed_deployment(
    record: dict[str, Any], key: signing.SigningKey | None = None
) -> dict[str, Any]:
    """`record` signed as the registry signs it (by default with the session's registry key)."""
    return deployment_verifier.sign(record, key or session_keys().registry)


def deployment_bytes(record: dict[str, Any], key: signing.SigningKey | None = None) -> bytes:
    """The encoded, signed Deployment record, as the registry puts it on `deployments`."""
    return serde.encode("Deployment", signed_deployment(record, key))


def session_verifier() -> DeploymentVerifier:
    """A Deployment verifier trusting the session's registry key, as a scorer or drift would."""
    return DeploymentVerifier.from_dir(session_keys().deployments_dir)
