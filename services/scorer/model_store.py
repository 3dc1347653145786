"""What the scorer may serve: verified models and the deployments that reference them.

Models arrive from the `models` topic and deployments from the `deployments` topic (both replayed
from the start, then followed). A model is kept only if its signature verifies against a trusted
key and it is not an older version replayed under its name (R9). Sessions are created only for
models a deployment references, before that deployment becomes visible, so the swap is one
pointer assignment and an unapproved model is never scored (R8). Sessions nobody references any
more are released. Readers take `snapshot()`, an immutable view, once per batch.

The two topics are read independently, so a Deployment can arrive before a model it references.
It is then held (the newest revision per deployment name, until a newer one is applied) and
applied as soon as its last model is accepted: every scorer ends up serving the same champion,
whatever order its replay saw the records in.

An external deployment (``external: true``) is scored by the user's own service: it is applied at
once, references no model here (never held, no session) and its events are skipped. A described
model (no ONNX bytes: known by its training data, for an external deployment) is accepted like
any verified model but never loaded; a served deployment naming one cannot be scored and is not
applied ("unservable"; the revision before it keeps serving).
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
Resolved = Callable[[Mapping[str, Any], str], None]  # a held deployment and its final status


def is_external(deployment: Mapping[str, Any]) -> bool:
    """True when the deployment's model runs in the user's service, which reports predictions."""
    return bool(deployment.get("external"))


def is_described(content: Mapping[str, Any]) -> bool:
    """True for a model described by its training data (estimator "external", empty ONNX
    bytes): nothing to load, it runs in the user's service."""
    return content.get("estimator") == "external" or content.get("onnx", b"?") == b""


@dataclasses.dataclass(frozen=True)
class Snapshot:
    """An immutable view: deployments by name and the loaded models they reference."""

    deployments: Mapping[str, Mapping[str, Any]]
    models: Mapping[str, LoadedModel]

    def models_of(self, deployment: Mapping[str, Any]) -> list[str]:
        """Model ids a deployment serves: champion first, then challengers (none if external)."""
        if is_external(deployment):
            return []
        ids = [deployment["champion"]["model_id"]]
        ids += [c["model"]["model_id"] for c in deployment.get("challengers", [])]
        return ids


class ModelStore:
    """Verified model contents, deployments, and sessions for the referenced models."""

    def __init__(self, verify: Verifier, load: Loader, resolved: Resolved | None = None) -> None:
        self._verify = verify
        self._load = load
        self._resolved = resolved
        self._pending: dict[str, Mapping[str, Any]] = {}  # name -> newest held deployment
        self._contents: dict[str, Mapping[str, Any]] = {}
        self._latest: dict[str, tuple[int, str]] = {}  # name -> (version, model_id)
        self._deployments: dict[str, Mapping[str, Any]] = {}
        self._lock = threading.Lock()
        self._snapshot = Snapshot({}, {})
        self.rejected: dict[str, int] = {}

    def snapshot(self) -> Snapshot:
        """The current view (never mutated: a new one replaces it on every change)."""
        return self._snapshot

    def pending(self) -> dict[str, int]:
        """Held deployments: name -> revision, waiting for a model they reference."""
        with self._lock:
            return {name: int(d["revision"]) for name, d in self._pending.items()}

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
            retried = self._retry_held(model_id)
        if self._resolved:
            for deployment, status in retried:
                self._resolved(deployment, status)
        return "accepted"

    def on_deployment(self, record: Mapping[str, Any]) -> str:
        """Apply a Deployment record, or hold it until its models arrive; returns "applied",
        "pending", "stale", "unservable" (it names a described model) or "rejected:<why>"."""
        with self._lock:
            return self._offer(record)

    def _offer(self, record: Mapping[str, Any]) -> str:
        name, revision = record["name"], int(record["revision"])
        current = self._deployments.get(name)
        if current and int(current["revision"]) >= revision:
            return "stale"
        missing = [m for m in self._snapshot.models_of(record) if m not in self._contents]
        if missing:
            held = self._pending.get(name)
            if held and int(held["revision"]) >= revision:
                return "stale"
            self._pending[name] = record
            log.warning(
                "deployment %s r%s references model %s, not received yet; held (%d held)",
                name,
                revision,
                missing[0][:12],
                len(self._pending),
            )
            return "pending"
        status = self._apply(record)
        held = self._pending.get(name)
        if status == "applied" and held and int(held["revision"]) <= revision:
            del self._pending[name]  # older than what is now served
        return status

    def _retry_held(self, model_id: str) -> list[tuple[Mapping[str, Any], str]]:
        """Offer again every held deployment that was waiting for `model_id`."""
        done = []
        for name, record in list(self._pending.items()):
            wanted = self._snapshot.models_of(record)
            if model_id not in wanted or not all(m in self._contents for m in wanted):
                continue
            del self._pending[name]
            status = self._offer(record)
            log.info("held deployment %s r%s: %s", name, record["revision"], status)
            done.append((record, status))
        return done

    def _apply(self, record: Mapping[str, Any]) -> str:
        """Load what a deployment references (all known), then swap it in."""
        models = dict(self._snapshot.models)
        wanted = self._snapshot.models_of(record)
        described = [m for m in wanted if is_described(self._contents[m])]
        if described:
            log.warning(
                "deployment %s r%s serves model %s, which is described (no ONNX, it runs in "
                "the user's service): not applied; deploy it with external: true",
                record["name"],
                record["revision"],
                described[0][:12],
            )
            return "unservable"
        for model_id in wanted:
            if model_id in models:
                continue
            content = self._contents[model_id]
            try:
                models[model_id] = self._load(content)
            except PoisonMessage as exc:
                self._reject(exc.reason.value, exc.detail)
                return f"rejected:{exc.reason.value}"
            except Exception as exc:  # onnxruntime refused it: contain, keep serving
                self._reject(Reason.UNSAFE_MODEL.value, f"session failed: {exc!r}"[:300])
                return "rejected:unsafe_model"
        self._deployments[record["name"]] = record
        referenced = {m for d in self._deployments.values() for m in Snapshot({}, {}).models_of(d)}
        models = {m: s for m, s in models.items() if m in referenced}
        self._snapshot = Snapshot(dict(self._deployments), models)
        return "applied"
