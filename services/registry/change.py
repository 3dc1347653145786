"""Change requests to a deployment and the Deployment record an approved one produces.

A change is plain data (it travels as the JSON payload of a GovernanceEvent): one of
set_champion, add_challenger, remove_challenger, rollback, set_mode, configure (only the
configuration in `setup`) or apply (the whole deployment as declared: champion, challengers and
every configuration field, missing ones at their defaults). Any change may carry `setup`, which
applies with it. `next_deployment` is pure: given the current record (or None for a new
deployment) it returns revision + 1.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Mapping
from typing import Any

from services.registry.deployment_config import DEFAULT_POLICY, MODES
from services.registry.deployment_config import FIELDS as SETUP_FIELDS

ACTIONS = (
    "set_champion",
    "add_challenger",
    "remove_challenger",
    "rollback",
    "set_mode",
    "configure",
    "apply",
)
MODEL_ACTIONS = ("set_champion", "add_challenger", "remove_challenger", "apply")
# What a configuration field is when a declared (applied) deployment leaves it out.
DEFAULTS: dict[str, Any] = {
    "mode": "shadow",
    "thresholds": [],
    "humility": [],
    "window_seconds": 60,
    "external": False,
    "label_delay_seconds": None,
    "release": None,
}


class InvalidChange(ValueError):
    """The change cannot apply to the deployment as it is; the message says why and what to do."""


@dataclasses.dataclass(frozen=True)
class Change:
    """One requested change of a deployment."""

    action: str
    model: dict[str, Any] | None = None  # ModelRef {model_name, model_id, version}
    weight: float = 0.0
    mode: str | None = None
    to_revision: int | None = None
    setup: dict[str, Any] = dataclasses.field(default_factory=dict)
    # apply: the declared challengers, [{model: ModelRef, weight}]
    challengers: list[dict[str, Any]] = dataclasses.field(default_factory=list)

    def to_payload(self) -> dict[str, Any]:
        """The JSON-able form stored in the GovernanceEvent payload."""
        return dataclasses.asdict(self)

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> Change:
        """Inverse of `to_payload`."""
        return cls(
            **{f.name: payload[f.name] for f in dataclasses.fields(cls) if f.name in payload}
        )

    def validate(self) -> None:
        """Check the change is well formed on its own; raises InvalidChange."""
        if self.action not in ACTIONS:
            raise InvalidChange(f"unknown action {self.action!r}; use one of {', '.join(ACTIONS)}")
        if self.action in MODEL_ACTIONS and not self.model:
            raise InvalidChange(f"{self.action} needs a model (name and version)")
        if self.action == "configure" and not self.setup:
            raise InvalidChange("configure needs setup: the configuration fields to change")
        if self.challengers and self.action != "apply":
            raise InvalidChange("challengers are declared only by apply; use add_challenger")
        for c in self.challengers:
            if not 0.0 <= c["weight"] <= 1.0:
                raise InvalidChange(f"challenger weight {c['weight']} is outside 0..1")
        if self.action == "add_challenger" and not 0.0 <= self.weight <= 1.0:
            raise InvalidChange(f"weight {self.weight} is outside 0..1")
        if self.action == "set_mode" and self.mode not in MODES:
            raise InvalidChange(f"mode must be one of {', '.join(MODES)}, not {self.mode!r}")
        unknown = set(self.setup) - set(SETUP_FIELDS)
        if unknown:
            raise InvalidChange(f"unknown setup fields {sorted(unknown)}; allowed {SETUP_FIELDS}")
        if self.setup.get("mode", "shadow") not in MODES:
            raise InvalidChange(f"mode must be one of {', '.join(MODES)}")


def _same(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    return a["model_id"] == b["model_id"]


def _check_weights(record: Mapping[str, Any]) -> None:
    total = sum(c["weight"] for c in record["challengers"])
    if record["mode"] == "ab" and total > 1.0 + 1e-9:
        raise InvalidChange(
            f"challenger weights sum to {total:.3f} > 1 in ab mode; lower a weight first"
        )


def _declared(name: str, revision: int, change: Change) -> dict[str, Any]:
    """The deployment exactly as `change` declares it, defaults for what it leaves out."""
    setup = change.setup
    record = {"name": name, "revision": revision, "champion": dict(change.model or {})}
    record["challengers"] = [
        {"model": dict(c["model"]), "weight": float(c["weight"])} for c in change.challengers
    ]
    record |= {k: copy.deepcopy(setup.get(k, v)) for k, v in DEFAULTS.items()}
    record["policy"] = {**DEFAULT_POLICY, **setup.get("policy", {})}
    ids = [c["model"]["model_id"] for c in record["challengers"]]
    if record["champion"]["model_id"] in ids or len(set(ids)) != len(ids):
        raise InvalidChange("a model is listed twice among the champion and challengers")
    return record


def _configure(record: dict[str, Any], setup: Mapping[str, Any]) -> None:
    """Apply the configuration fields a change carries; a partial policy merges."""
    for key, value in setup.items():
        if key == "policy":
            record["policy"] = {**record["policy"], **value}
        else:
            record[key] = copy.deepcopy(value)


def _new(name: str, change: Change) -> dict[str, Any]:
    if change.action not in ("set_champion", "apply"):
        raise InvalidChange(
            f"deployment {name!r} does not exist; create it with a set_champion or apply request"
        )
    return _declared(name, 0, change)


def next_deployment(
    name: str,
    current: Mapping[str, Any] | None,
    history: list[Mapping[str, Any]],
    change: Change,
    *,
    approver: str,
    reason: str,
    now_ms: int,
) -> dict[str, Any]:
    """The Deployment record that results from approving `change`; raises InvalidChange."""
    change.validate()
    if current is None:
        record = _new(name, change)
    elif change.action == "apply":
        record = _declared(name, int(current["revision"]), change)
    else:
        record = copy.deepcopy(dict(current))
        _apply(record, history, change)
        _configure(record, change.setup)
    record.update(
        revision=record["revision"] + 1, updated_at=now_ms, updated_by=approver, reason=reason
    )
    _check_weights(record)
    return record


def _apply(record: dict[str, Any], history: list[Mapping[str, Any]], change: Change) -> None:
    model = change.model or {}
    challengers = record["challengers"]
    if change.action == "set_champion":
        if _same(record["champion"], model):
            raise InvalidChange(f"{model['model_name']} v{model['version']} is already champion")
        record["champion"] = dict(model)
        record["challengers"] = [c for c in challengers if not _same(c["model"], model)]
    elif change.action == "add_challenger":
        if _same(record["champion"], model):
            raise InvalidChange("the champion cannot also be a challenger")
        kept = [c for c in challengers if not _same(c["model"], model)]
        record["challengers"] = [*kept, {"model": dict(model), "weight": float(change.weight)}]
    elif change.action == "remove_challenger":
        kept = [c for c in challengers if not _same(c["model"], model)]
        if len(kept) == len(challengers):
            raise InvalidChange(
                f"{model.get('model_name')} v{model.get('version')} is not a challenger"
            )
        record["challengers"] = kept
    elif change.action == "set_mode":
        record["mode"] = change.mode
    elif change.action == "rollback":
        _rollback(record, history, change.to_revision)


def _rollback(record: dict[str, Any], history: list[Mapping[str, Any]], to: int | None) -> None:
    target_revision = record["revision"] - 1 if to is None else to
    target = next((h for h in history if h["revision"] == target_revision), None)
    if target is None or target_revision >= record["revision"]:
        known = [h["revision"] for h in history]
        raise InvalidChange(
            f"cannot roll back to revision {target_revision}; earlier revisions: {known[:-1]}"
        )
    # Rollback restores who serves (and how); policy, thresholds and humility stay current.
    for field in ("champion", "challengers", "mode"):
        record[field] = copy.deepcopy(target[field])
