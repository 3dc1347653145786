"""What the drift service takes from `models` and `deployments`: only verified records.

A model's baseline is what every window of its deployments is compared against, so a model
record is used only when its signature verifies against the trainer's trusted keys (as the
scorer checks it). A Deployment is used only when the registry's key signed it and its revision
is the one in force plus one (the first seen of a deployment at any revision). Anything else is
refused with a PoisonMessage: the follower dead-letters and counts it, and the reference in force
stays.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from services.common import signing
from services.common.deployment_revisions import RevisionGate
from services.common.deployment_verifier import DeploymentVerifier

Verify = Callable[[Mapping[str, Any]], dict[str, Any]]
Apply = Callable[[Mapping[str, Any]], None]


def model_keys(directory: str | os.PathLike[str]) -> dict[str, Any]:
    """The trainer's public keys model records must be signed with (ConfigError when none)."""
    return signing.required_public_keys(
        directory,
        f"no trusted public keys in {Path(directory)}; create a key pair with "
        "`streamops keys init` or set STREAMOPS_DRIFT_TRUSTED_KEYS_DIR",
    )


class ControlIntake:
    """The control follower's apply: verify, check the revision, then hand to the book."""

    def __init__(
        self,
        models_topic: str,
        verify_model: Verify,
        verify_deployment: DeploymentVerifier,
        apply: Apply,
        revisions: RevisionGate | None = None,
    ) -> None:
        self._models_topic = models_topic
        self._verify_model = verify_model
        self._verify_deployment = verify_deployment
        self._apply = apply
        self.revisions = revisions or RevisionGate()

    def __call__(self, topic: str, record: dict[str, Any]) -> None:
        """Apply one decoded control record, or raise PoisonMessage saying why not."""
        if topic == self._models_topic:
            self._verify_model(record)
            self._apply(record)
        else:
            self.revisions.admit(self._verify_deployment(record), self._apply)
