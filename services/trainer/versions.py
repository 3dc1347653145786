"""Version and parent resolution from what the `models` and `deployments` topics hold.

The next version of a name is one past the highest version any decodable record of that name
carries, signed or not: a number someone may already have seen is never reused. The parent is
the current champion of the deployment (the one named, else the one named like the model);
without one it is the newest *verified* earlier version, since lineage must not point at a
record nobody can trust.

>>> ledger = ModelLedger(verify=lambda record: record["content"])
>>> ledger.add_model({"content": {"model_id": "a1", "name": "credit", "version": 1}})
'verified'
>>> plan = ledger.plan("credit")
>>> plan.version, plan.parent_id, plan.parent_source
(2, 'a1', 'previous version 1')
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Mapping
from typing import Any

from services.common.errors import PoisonMessage

Verify = Callable[[Mapping[str, Any]], Mapping[str, Any]]  # ModelPublished -> verified content


@dataclasses.dataclass(frozen=True)
class VersionPlan:
    """The version and parent a new model of ``name`` gets, and why that parent."""

    name: str
    version: int
    parent_id: str | None
    parent_source: str
    champion: Mapping[str, Any] | None = None  # the champion's verified content, if held


@dataclasses.dataclass
class _NameState:
    max_version: int = 0
    latest_verified: tuple[int, str] | None = None  # (version, model id)
    last_created_at: int = 0


class ModelLedger:
    """What the control topics say: versions per model name, champions per deployment."""

    def __init__(self, verify: Verify) -> None:
        self._verify = verify
        self._names: dict[str, _NameState] = {}
        self._contents: dict[str, Mapping[str, Any]] = {}  # verified, by model id
        self._deployments: dict[str, Mapping[str, Any]] = {}
        self.rejected = 0
        # A follower thread applies records while the retrain loop plans versions.
        self._lock = threading.RLock()

    def add_model(self, record: Mapping[str, Any]) -> str:
        """Apply one ModelPublished record; returns "verified" or "rejected: <why>"."""
        content = record.get("content") or {}
        name, version = content.get("name"), content.get("version")
        try:
            verified = self._verify(record)
        except PoisonMessage as exc:
            verified, why = None, exc.detail
        with self._lock:
            if not isinstance(name, str) or not isinstance(version, int):
                self.rejected += 1
                return "rejected: no name or version"
            state = self._names.setdefault(name, _NameState())
            state.max_version = max(state.max_version, version)
            if verified is None:
                self.rejected += 1
                return f"rejected: {why}"
            self._remember(verified)
            return "verified"

    def note_published(self, content: Mapping[str, Any]) -> None:
        """Record a model this process just published (before the topic echoes it back)."""
        with self._lock:
            state = self._names.setdefault(content["name"], _NameState())
            state.max_version = max(state.max_version, int(content["version"]))
            self._remember(content)

    def _remember(self, content: Mapping[str, Any]) -> None:
        state = self._names.setdefault(content["name"], _NameState())
        version = int(content["version"])
        if state.latest_verified is None or version >= state.latest_verified[0]:
            state.latest_verified = (version, content["model_id"])
        state.last_created_at = max(state.last_created_at, int(content.get("created_at") or 0))
        self._contents[content["model_id"]] = content

    def add_deployment(self, record: Mapping[str, Any]) -> None:
        """Apply one Deployment record; the highest revision per name wins."""
        with self._lock:
            current = self._deployments.get(record["name"])
            if current is None or int(record["revision"]) >= int(current["revision"]):
                self._deployments[record["name"]] = record

    def deployment(self, name: str) -> Mapping[str, Any] | None:
        """The current Deployment record of ``name``, if any."""
        return self._deployments.get(name)

    def content(self, model_id: str) -> Mapping[str, Any] | None:
        """A verified ModelContent by model id, if this ledger holds it."""
        return self._contents.get(model_id)

    def latest(self, name: str) -> tuple[int, str] | None:
        """(version, model id) of the newest verified model of ``name``, if any."""
        with self._lock:
            state = self._names.get(name)
            return state.latest_verified if state else None

    def last_published_at(self, name: str) -> int:
        """Creation time (epoch ms) of the newest verified model of ``name``; 0 if none."""
        state = self._names.get(name)
        return state.last_created_at if state else 0

    def plan(self, name: str, deployment: str | None = None) -> VersionPlan:
        """Version = highest seen + 1; parent = the deployment's champion, else the previous."""
        with self._lock:
            return self._plan(name, deployment)

    def _plan(self, name: str, deployment: str | None) -> VersionPlan:
        state = self._names.get(name, _NameState())
        version = state.max_version + 1
        dep = self._deployments.get(deployment or name)
        if dep is not None and (deployment is not None or dep["champion"]["model_name"] == name):
            champion_id = dep["champion"]["model_id"]
            return VersionPlan(
                name,
                version,
                champion_id,
                f"champion of deployment {dep['name']!r}",
                self._contents.get(champion_id),
            )
        if state.latest_verified is not None:
            prev_version, prev_id = state.latest_verified
            return VersionPlan(name, version, prev_id, f"previous version {prev_version}")
        return VersionPlan(name, version, None, "none (first version)")
