"""Applies records from the followed topics to the view, verifying model signatures first.

A model record that fails verification (tampered, unsigned, unknown key) or cannot even be
decoded never enters the view: it is counted by reason and listed as rejected (R9).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from services.common import serde
from services.common.errors import PoisonMessage
from services.common.topics import TopicNamer
from services.registry.view import RegistryView

log = logging.getLogger(__name__)

Verify = Callable[[Mapping[str, Any]], dict[str, Any]]  # ModelPublished -> verified content
OnRejected = Callable[[str], None]  # reason (a bounded Reason value)


def _describe(record: Mapping[str, Any] | None) -> dict[str, Any]:
    content = (record or {}).get("content") or {}
    return {
        "name": content.get("name"),
        "version": content.get("version"),
        "model_id": content.get("model_id"),
        "key_id": (record or {}).get("key_id") or None,
    }


class Ingest:
    """The follower's `apply` and `on_poison` for every topic the view follows."""

    def __init__(
        self,
        view: RegistryView,
        verify: Verify,
        namer: TopicNamer,
        on_rejected: OnRejected = lambda reason: None,
    ) -> None:
        self.view = view
        self.verify = verify
        self.on_rejected = on_rejected
        self._models_topic = namer.models
        self._handlers = {
            namer.models: self._model,
            namer.deployments: self.view.apply_deployment,
            namer.governance: self.view.apply_governance,
            namer.drift: self.view.apply_drift,
            namer.breaches: self.view.breaches.apply,
        }

    def topics(self) -> list[str]:
        """The physical topics this ingest applies."""
        return list(self._handlers)

    def __call__(self, topic: str, record: dict[str, Any]) -> None:
        """Apply one decoded record."""
        self._handlers[topic](record)

    def _model(self, record: dict[str, Any]) -> None:
        try:
            content = self.verify(record)
        except PoisonMessage as exc:
            # Re-encoding gives the record's bytes, so the same record replayed counts once.
            self._reject(serde.encode("ModelPublished", record), exc, record)
            return
        self.view.apply_model(content, record["key_id"])

    def on_poison(self, topic: str, raw: bytes, exc: PoisonMessage) -> None:
        """A record that could not be decoded: rejected if it was on `models`, else only logged."""
        if topic == self._models_topic:
            self._reject(raw, exc, None)
        else:
            log.warning("dropped an undecodable record on %s: %s", topic, exc)

    def _reject(self, raw: bytes, exc: PoisonMessage, record: Mapping[str, Any] | None) -> None:
        entry = {**_describe(record), "reason": exc.reason.value, "detail": exc.detail[:300]}
        log.warning("model record rejected (%s): %s", exc.reason.value, exc.detail)
        self.view.apply_rejected(raw, entry)
        self.on_rejected(exc.reason.value)
