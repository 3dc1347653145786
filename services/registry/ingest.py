"""Applies records from the followed topics to the view, verifying model signatures first.

A model record that fails verification (tampered, unsigned, unknown key) or cannot even be
decoded never enters the view: it is counted by reason and listed as rejected (R9).

A record carrying NaN or Infinity anywhere is refused (PoisonMessage, so the follower
dead-letters it): the view serves JSON, which has no such numbers. Redis being unreachable is a
RetryableError (the follower waits for it); any other Redis error is the record's.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping
from typing import Any

import redis

from services.common import serde
from services.common.errors import PoisonMessage, Reason, RetryableError
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


def check_finite(value: Any, where: str = "record") -> None:
    """Raise PoisonMessage(NON_FINITE) if a NaN or an Infinity is anywhere in `value`."""
    if isinstance(value, float):
        if not math.isfinite(value):
            raise PoisonMessage(Reason.NON_FINITE, f"{where} is {value}")
    elif isinstance(value, Mapping):
        for k, v in value.items():
            check_finite(v, f"{where}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            check_finite(v, f"{where}[{i}]")


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
            namer.retrain_outcomes: self.view.apply_retrain_outcome,
        }

    def topics(self) -> list[str]:
        """The physical topics this ingest applies."""
        return list(self._handlers)

    def __call__(self, topic: str, record: dict[str, Any]) -> None:
        """Apply one decoded record; PoisonMessage if it can never apply, RetryableError if
        Redis cannot be reached."""
        if topic != self._models_topic:
            check_finite(record)  # a model's are checked with its signature, and listed
        try:
            self._handlers[topic](record)
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            raise RetryableError(f"Redis failed applying a record from {topic}: {exc}") from None

    def _model(self, record: dict[str, Any]) -> None:
        try:
            content = self.verify(record)
            check_finite(content, "content")
        except PoisonMessage as exc:
            # Re-encoding gives the record's bytes, so the same record replayed counts once.
            self._reject(serde.encode("ModelPublished", record), exc, record)
            return
        self.view.apply_model(content, record["key_id"])

    def on_poison(self, topic: str, raw: bytes, exc: PoisonMessage) -> None:
        """A record that could not be decoded: listed as rejected if it was on `models` (the
        follower dead-letters it either way)."""
        if topic == self._models_topic:
            self._reject(raw, exc, None)
        else:
            log.warning("undecodable record on %s: %s", topic, exc)

    def _reject(self, raw: bytes, exc: PoisonMessage, record: Mapping[str, Any] | None) -> None:
        entry = {**_describe(record), "reason": exc.reason.value, "detail": exc.detail[:300]}
        log.warning("model record rejected (%s): %s", exc.reason.value, exc.detail)
        self.view.apply_rejected(raw, entry)
        self.on_rejected(exc.reason.value)
