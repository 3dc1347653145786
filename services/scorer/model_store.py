"""What the scorer may serve: verified models and the deployments that reference them.

Models arrive from the `models` topic and deployments from the `deployments` topic (both replayed
from the start, then followed). A model is kept only if its signature verifies against a trusted
key and it is not an older version replayed under its name (R9). Sessions are created only for
models a deployment references, before that deployment becomes visible, so the swap is one
pointer assignment and an unapproved model is never scored (R8). Sessions nobody references any
more are released. Readers take `snapshot()`, an immutable view, once per batch.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable, Mapping
from typing import Any

from services.common.errors import PoisonMessage, Reason
from services.scorer.inference import LoadedModel

log = logging.getLogger(__name__)

Verifier = Callable[[dict[str, Any]], dict[str, Any]]  # ModelPublished -> verified content
Loader = Callable[[Mapping[str, Any]], LoadedModel]


@dataclasses.dataclass(frozen=True)
class Snapshot:
    """An immutable view: deployments by name and the loaded models they reference."""

    deployments: Mapping[str, Mapping[str, Any]]
    models: Mapping[str, LoadedModel]

    def models_of(self, deployment: Mapping[str, Any]) -> list[str]:
        """Model ids a deployment serves: champion first, then challengers."""
        ids = [deployment["champion"]["model_id"]]
        ids += [c["model"]["model_id"] for c in deployment.get("challengers", [])]
        return ids


class ModelStore:
    """Verified model contents, deployments, and sessions for the referenced models."""

    def __init__(self, verify: Verifier, load: Loader) -> None:
        self._verify = verify
        self._load = load
        self._contents: dict[str, Mapping[str, Any]] = {}
        self._latest: dict[str, tuple[int, str]] = {}  # name -> (version, model_id)
        self._deployments: dict[str, Mapping[str, Any]] = {}
        self._lock = threading.Lock()
        self._snapshot = Snapshot({}, {})
        self.rejected: dict[str, int] = {}

    def snapshot(self) -> Snapshot:
        """The current view (never mutated: a new one replaces it on every change)."""
        return self._snapshot

    def _reject(self, reason: str, detail: str) -> str:
        self.rejected[reason] = self.rejected.get(reason, 0) + 1
        log.warning("model rejected (%s): %s", reason, detail)
        return f"rejected:{reason}"

    def on_model(self, record: dict[str, Any]) -> str:
        """Accept a ModelPublished record; returns "accepted", "duplicate" or "rejected:<why>"."""
        try:
            content = self._verify(record)
        except PoisonMessage as exc:
            return self._reject(exc.reason.value, exc.detail)
        name, version, model_id = content["name"], int(content["version"]), content["model_id"]
        with self._lock:
            seen = self._latest.get(name)
            if seen and seen[1] == model_id:
                return "duplicate"
            if seen and version <= seen[0]:
                return self._reject(
                    "replayed", f"{name} v{version} ({model_id[:12]}) after v{seen[0]}"
                )
            self._latest[name] = (version, model_id)
            self._contents[model_id] = content
        return "accepted"

    def on_deployment(self, record: Mapping[str, Any]) -> str:
        """Apply a Deployment record: load what it references, then swap it in."""
        with self._lock:
            current = self._deployments.get(record["name"])
            if current and int(current["revision"]) >= int(record["revision"]):
                return "stale"
            models = dict(self._snapshot.models)
            wanted = Snapshot({record["name"]: record}, {}).models_of(record)
            for model_id in wanted:
                if model_id in models:
                    continue
                content = self._contents.get(model_id)
                if content is None:
                    log.warning(
                        "deployment %s r%s references unknown model %s; not applied",
                        record["name"],
                        record["revision"],
                        model_id[:12],
                    )
                    return "unknown_model"
                try:
                    models[model_id] = self._load(content)
                except PoisonMessage as exc:
                    self._reject(exc.reason.value, exc.detail)
                    return f"rejected:{exc.reason.value}"
                except Exception as exc:  # onnxruntime refused it: contain, keep serving
                    self._reject(Reason.UNSAFE_MODEL.value, f"session failed: {exc!r}"[:300])
                    return "rejected:unsafe_model"
            self._deployments[record["name"]] = record
            referenced = {
                m for d in self._deployments.values() for m in Snapshot({}, {}).models_of(d)
            }
            models = {m: s for m, s in models.items() if m in referenced}
            self._snapshot = Snapshot(dict(self._deployments), models)
        return "applied"
