"""The approval workflow: requests, approvals, rejections, guardrails and auto-approve policies.

Every step is a GovernanceEvent on `governance`; an approval also writes the new Deployment
record on `deployments`, in one Kafka transaction with its event (the publisher's job), so the
audit trail and the desired state never disagree. The registry is the only writer of both, and
this class serializes its own writes so two approvals cannot both claim revision + 1.
"""

from __future__ import annotations

import dataclasses
import json
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from services.common import serde
from services.common.errors import StreamopsError
from services.registry import deployment_config, guardrails
from services.registry.change import Change, InvalidChange, next_deployment
from services.registry.deployment_config import InvalidField
from services.registry.roles import POLICY, Principal, Role
from services.registry.view import RegistryView

Outgoing = tuple[str, str, str, dict[str, Any]]  # (logical topic, key, record name, record)


class Publisher(Protocol):
    """Writes records durably and atomically (all or none), or raises RetryableError."""

    def publish(self, records: list[Outgoing]) -> None:
        """Deliver every record or none."""


class Refused(StreamopsError):
    """A governance step that cannot happen; `kind` is not_found|forbidden|conflict|invalid;
    `field` names the request field at fault, when one is."""

    def __init__(self, kind: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.field = field


# What a revision says about the deployment, apart from its bookkeeping.
_BOOKKEEPING = ("revision", "updated_at", "updated_by", "reason")


def _configuration(record: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k not in _BOOKKEEPING}


def _models(record: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [record["champion"], *(c["model"] for c in record["challengers"])]


def outcome_event_id(outcome: Mapping[str, Any]) -> str:
    """The audit event of a retrain outcome: one per request (a replayed trainer may answer a
    request twice; the first answer recorded stands)."""
    return f"retrain-outcome-{outcome['request_id']}"


def _now_ms() -> int:
    return int(time.time() * 1000)


class Governor:
    """Turns requests and decisions into audit events and new deployment revisions."""

    def __init__(
        self,
        view: RegistryView,
        publisher: Publisher,
        clock: Callable[[], int] = _now_ms,
        new_id: Callable[[], str] = lambda: uuid.uuid4().hex,
    ) -> None:
        self.view = view
        self.publisher = publisher
        self.clock = clock
        self.new_id = new_id
        self._lock = threading.Lock()

    def _model_ref(self, spec: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        if spec.get("model_id"):
            summary = self.view.model_by_id(str(spec["model_id"]))
            what = f"model id {spec['model_id']}"
        else:
            name, version = spec.get("name"), spec.get("version")
            if not name or version is None:
                raise Refused("invalid", "give the model as {name, version} or {model_id}")
            summary = self.view.model(str(name), int(version))
            what = f"model {name} v{version}"
        if summary is None:
            raise Refused(
                "not_found",
                f"{what} is not in the registry (never published, or rejected: see /rejected)",
            )
        ref = {
            "model_name": summary["name"],
            "model_id": summary["model_id"],
            "version": summary["version"],
        }
        return ref, summary

    def _ref_at(self, spec: Mapping[str, Any], field: str) -> dict[str, Any]:
        try:
            return self._model_ref(spec)[0]
        except Refused as exc:
            raise Refused(exc.kind, f"{field}: {exc}", field=field) from None

    def _change(self, body: Mapping[str, Any]) -> Change:
        model = self._ref_at(body["model"], "model") if body.get("model") else None
        challengers = []
        for i, c in enumerate(body.get("challengers") or []):
            where = f"challengers[{i}]"
            if not isinstance(c, Mapping) or not isinstance(c.get("model"), Mapping):
                raise Refused("invalid", f"{where}: give {{model: {{name, version}}}}", where)
            weight = c.get("weight") or 0.0
            if isinstance(weight, bool) or not isinstance(weight, int | float):
                raise Refused("invalid", f"{where}.weight: must be a number", f"{where}.weight")
            ref = self._ref_at(c["model"], f"{where}.model")
            challengers.append({"model": ref, "weight": float(weight)})
        return Change(
            action=str(body.get("action", "")),
            model=model,
            weight=float(body.get("weight") or 0.0),
            mode=body.get("mode"),
            to_revision=body.get("to_revision"),
            setup=dict(body.get("setup") or {}),
            challengers=challengers,
        )

    def _model_content(self, ref: Mapping[str, Any]) -> dict[str, Any] | None:
        return self.view.model_by_id(str(ref["model_id"]))

    def _checked(self, change: Change, current: Mapping[str, Any] | None) -> Change:
        """`change` with its configuration checked against the champion it will have and
        completed with defaults; raises Refused naming the field."""
        try:
            change.validate()
        except InvalidChange as exc:
            raise Refused("invalid", str(exc)) from None
        if change.action in ("set_champion", "apply") and change.model:
            champion = self._model_content(change.model)
        else:
            champion = current and self._model_content(current["champion"])
        try:
            setup = deployment_config.normalize(change.setup, champion)
        except InvalidField as exc:
            raise Refused("invalid", str(exc), field=exc.field) from None
        return dataclasses.replace(change, setup=setup)

    def _check(
        self,
        name: str,
        change: Change,
        current: Mapping[str, Any] | None,
        actor: str,
        reason: str,
    ) -> dict[str, Any]:
        """The Deployment the change would produce from `current`; raises Refused."""
        try:
            proposed = next_deployment(
                name,
                current,
                self.view.history(name),
                change,
                approver=actor,
                reason=reason,
                now_ms=self.clock(),
            )
        except InvalidChange as exc:
            raise Refused("invalid", str(exc)) from None
        self._guard(name, current, proposed)
        try:
            serde.encode("Deployment", proposed)
        except Exception as exc:  # fastavro's ValueError/TypeError/KeyError
            raise Refused("invalid", f"the deployment would not be a valid record: {exc}") from None
        return proposed

    def _guard(
        self, name: str, current: Mapping[str, Any] | None, proposed: Mapping[str, Any]
    ) -> None:
        """Every model a change brings in must serve beside the champion (guardrails)."""
        champion = self._model_content(proposed["champion"])
        before = set() if current is None else {m["model_id"] for m in _models(current)}
        pairs = []
        if current is not None and proposed["champion"]["model_id"] not in before:
            pairs.append((self._model_content(current["champion"]), champion))
        for c in proposed["challengers"]:
            if c["model"]["model_id"] not in before:
                pairs.append((champion, self._model_content(c["model"])))
        for theirs, ours in pairs:
            if theirs is not None and ours is not None:
                message = guardrails.refusal(name, theirs, ours)
                if message:
                    raise Refused("invalid", message)

    def _event(
        self,
        deployment: str,
        action: str,
        who: Principal,
        request_id: str,
        reason: str,
        payload: Mapping[str, Any],
        previous: int | None = None,
        new: int | None = None,
    ) -> dict[str, Any]:
        return {
            "event_id": self.new_id(),
            "deployment": deployment,
            "action": action,
            "actor": who.name,
            "role": who.role.value,
            "request_id": request_id,
            "reason": reason,
            "at": self.clock(),
            "payload": json.dumps(payload, sort_keys=True),
            "previous_revision": previous,
            "new_revision": new,
        }

    def _deliver(self, records: list[Outgoing]) -> None:
        self.publisher.publish(records)
        # Read-your-writes: apply what is now durable; the follower re-applies it idempotently.
        for topic, _key, _name, record in records:
            if topic == "deployments":
                self.view.apply_deployment(record)
            elif topic == "governance":
                self.view.apply_governance(record)

    def record_outcome(self, outcome: Mapping[str, Any]) -> dict[str, Any] | None:
        """Put a retrain's outcome (the trainer's RetrainOutcome) in the audit trail, once per
        request answered: None when it is there already."""
        event_id = outcome_event_id(outcome)
        with self._lock:
            if self.view.has_event(event_id):
                return None
            event = {
                "event_id": event_id,
                "deployment": outcome["deployment"],
                "action": "retrain_outcome",
                "actor": "trainer",
                "role": "system",
                "request_id": outcome["request_id"],
                "reason": f"retrain {outcome['outcome']}: {outcome['detail']}"[:2000],
                "at": int(outcome["at"]),
                "payload": json.dumps(dict(outcome), sort_keys=True),
                "previous_revision": None,
                "new_revision": None,
            }
            self._deliver([("governance", outcome["deployment"], "GovernanceEvent", event)])
        return event

    def retrain(
        self, deployment: str, who: Principal, reason: str, evidence: Mapping[str, Any]
    ) -> dict[str, Any]:
        """Ask the trainer for a new version: a RetrainRequest and the audit event saying why,
        in one transaction (a policy's decision, so no approval)."""
        with self._lock:
            if self.view.deployment(deployment) is None:
                raise Refused("not_found", f"no deployment {deployment!r}")
            request_id = self.new_id()
            now = self.clock()
            request = {
                "request_id": request_id,
                "deployment": deployment,
                "reason": reason,
                "requested_by": who.name,
                "requested_at": now,
                "breach_ids": [],
                "last_n": None,
            }
            event = self._event(deployment, "retrain", who, request_id, reason, evidence)
            self._deliver(
                [
                    ("retrain", deployment, "RetrainRequest", request),
                    ("governance", deployment, "GovernanceEvent", event),
                ]
            )
        return event

    def request(
        self,
        deployment: str,
        body: Mapping[str, Any],
        who: Principal,
        evidence: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """File a change request (editor or owner); auto-approved when the policy says so.
        `evidence`: what an automatic decision rests on, kept in the request's payload."""
        if not who.role.allows(Role.EDITOR):
            raise Refused("forbidden", f"{who.name} is a {who.role}; requests need an editor")
        reason = str(body.get("reason") or "").strip()
        if not reason:
            raise Refused("invalid", "a change request needs a reason")
        with self._lock:
            current = self.view.deployment(deployment)
            change = self._checked(self._change(body), current)
            proposed = self._check(deployment, change, current, POLICY.name, reason)
            if current is not None and _configuration(current) == _configuration(proposed):
                return {
                    "deployment": deployment,
                    "status": "unchanged",
                    "revision": current["revision"],
                    "request_id": None,
                }
            if current is None and proposed["policy"]["auto_approve"]:
                if not who.role.allows(Role.OWNER):
                    # Otherwise an editor could create a deployment that approves itself forever.
                    raise Refused(
                        "forbidden",
                        "only an owner may create a deployment with an auto_approve policy",
                    )
            # A governed deployment stays governed until an owner approves otherwise: the
            # policy in force decides, never the one a request asks for.
            auto = (current or proposed)["policy"]["auto_approve"]
            request_id = self.new_id()
            payload = {
                **change.to_payload(),
                "base_revision": None if current is None else current["revision"],
                **({"evidence": dict(evidence)} if evidence else {}),
            }
            records: list[Outgoing] = [
                (
                    "governance",
                    deployment,
                    "GovernanceEvent",
                    self._event(deployment, "request", who, request_id, reason, payload),
                )
            ]
            if auto:
                records += self._approval(
                    deployment,
                    proposed,
                    current,
                    request_id,
                    POLICY,
                    "auto_approve policy",
                    payload,
                )
            self._deliver(records)
        return self._request_or_fail(request_id)

    def _approval(
        self,
        deployment: str,
        proposed: dict[str, Any],
        current: Mapping[str, Any] | None,
        request_id: str,
        who: Principal,
        reason: str,
        payload: Mapping[str, Any],
    ) -> list[Outgoing]:
        previous = None if current is None else current["revision"]
        event = self._event(
            deployment, "approve", who, request_id, reason, payload, previous, proposed["revision"]
        )
        return [
            ("deployments", deployment, "Deployment", proposed),
            ("governance", deployment, "GovernanceEvent", event),
        ]

    def _pending(self, request_id: str) -> dict[str, Any]:
        found = self.view.request(request_id)
        if found is None:
            raise Refused(
                "not_found",
                f"no change request {request_id}; list them with "
                "`streamops deploy history <deployment>`",
            )
        if found["status"] != "pending":
            raise Refused("conflict", f"request {request_id} is already {found['status']}")
        return found

    def _request_or_fail(self, request_id: str) -> dict[str, Any]:
        found = self.view.request(request_id)
        if found is None:  # the view lost a write we just made durable: say so, do not guess
            raise Refused("conflict", f"request {request_id} written but not visible yet; retry")
        return found

    def approve(self, request_id: str, who: Principal, reason: str = "") -> dict[str, Any]:
        """Approve a pending request (an owner other than the requester): new revision."""
        if not who.role.allows(Role.OWNER):
            raise Refused("forbidden", f"{who.name} is a {who.role}; approvals need an owner")
        with self._lock:
            found = self._pending(request_id)
            if found["requested_by"] == who.name:
                raise Refused(
                    "forbidden",
                    f"{who.name} filed request {request_id} and cannot "
                    "approve it; ask another owner",
                )
            deployment = found["deployment"]
            current = self.view.deployment(deployment)
            change = self._checked(Change.from_payload(found["change"]), current)
            why = reason or found["reason"]
            proposed = self._check(deployment, change, current, who.name, why)
            self._deliver(
                self._approval(deployment, proposed, current, request_id, who, why, found["change"])
            )
        return self._request_or_fail(request_id)

    def reject(self, request_id: str, who: Principal, reason: str) -> dict[str, Any]:
        """Reject a pending request (owner); only an audit event is written."""
        if not who.role.allows(Role.OWNER):
            raise Refused("forbidden", f"{who.name} is a {who.role}; rejections need an owner")
        if not reason.strip():
            raise Refused("invalid", "a rejection needs a reason")
        with self._lock:
            found = self._pending(request_id)
            event = self._event(
                found["deployment"], "reject", who, request_id, reason, found["change"]
            )
            self._deliver([("governance", found["deployment"], "GovernanceEvent", event)])
        return self._request_or_fail(request_id)
