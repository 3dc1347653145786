"""The release controller: each deployment's release policy, acted on by the registry itself.

Every second (its own thread) it looks at each deployment with a release policy, in the view
the registry keeps of the topics, and makes at most one change request per deployment:

1. the rollback guard: after a champion swap (not itself a rollback), once the new champion has
   `rollback_windows` labelled windows, a rollback when it did worse than the previous one;
2. the shadow challengers it put there: promoted (`set_champion`) or retired
   (`remove_challenger`) on the paired evidence (`release_evidence.judge`);
3. a version of the champion's model newer than the champion and never named in a request of
   the deployment: added as a shadow challenger (`shadow`) or made champion (`replace`);
4. a retrain, when the policy has a schedule (`retrain_every_seconds`) or a number of new labels
   (`retrain_after_labels`) and that much time, or that many labels joined for the champion,
   passed since the newest version was created or the last retrain was asked for: a
   RetrainRequest and a `retrain` audit event with the figures, in one transaction (a policy's
   decision: no approval). Not while a version it shadows is still being judged.

Every tick also puts the trainer's new retrain outcomes (`retrain_outcomes`: published,
rejected, refused, failed), whoever asked for the retrain, into the audit trail as
`retrain_outcome` events by `trainer`, once per request answered.

Its requests go through governance like anyone's, filed by the principal `release-controller`
with the evidence in the request's payload; the policy's `approval: auto` approves them as
`release-policy`, `owner` leaves them pending for an owner. It keeps no state of its own: what
it has done is the audit trail (a request already filed for the same action and model, or a
rollback of the same revision, is never filed again), so a restarted registry carries on where
it stopped. External deployments are left alone (streamops does not serve their models).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import threading
from collections.abc import Callable, Mapping
from typing import Any

import redis

from services.common.errors import RetryableError
from services.registry import release_evidence
from services.registry.governance import Governor, Refused
from services.registry.roles import Principal, Role
from services.registry.view import RegistryView

log = logging.getLogger(__name__)

CONTROLLER = Principal("release-controller", Role.EDITOR)
RELEASE_POLICY = Principal("release-policy", Role.POLICY)


def _model_id(request: Mapping[str, Any]) -> str | None:
    model = request["change"].get("model") or {}
    return model.get("model_id")


class ReleaseController:
    """Turns release policies into change requests; `tick` does one round."""

    def __init__(
        self,
        view: RegistryView,
        governor: Governor,
        counted: Callable[[str], None] = lambda _decision: None,
    ) -> None:
        self.view, self.governor, self.counted = view, governor, counted
        self._refused: set[tuple[str, str]] = set()  # (deployment, model id) refused: not retried
        # (deployment, revision) swaps the guard is done with: kept, or a rollback themselves.
        # Only a shortcut (a restarted registry decides them again, the same way).
        self._guarded: set[tuple[str, int]] = set()

    def tick(self) -> list[str]:
        """One round over every deployment; what it requested, in words."""
        done = []
        for name in self.view.deployment_names():
            done += self._outcomes(name)
            d = self.view.deployment(name)
            if d is None or not d.get("release") or d.get("external"):
                continue
            try:
                said = self._deployment(d)
            except Refused as exc:
                log.warning("release controller, deployment %s: refused: %s", name, exc)
                continue
            if said:
                done.append(said)
        return done

    def _outcomes(self, name: str) -> list[str]:
        """The trainer's answers to retrain requests (whoever asked), into the audit trail."""
        said = []
        for outcome in self.view.retrain_outcomes(name):
            if self.governor.record_outcome(outcome) is not None:
                said.append(f"{name}: retrain {outcome['outcome']}: {outcome['detail']}")
                log.info("retrain outcome recorded: %s", said[-1])
        return said

    def _deployment(self, d: Mapping[str, Any]) -> str | None:
        name, policy = d["name"], d["release"]
        requests = self.view.requests(name)
        if any(r["status"] == "pending" and r["requested_by"] == CONTROLLER.name for r in requests):
            return None  # one decision at a time; the pending one waits for an owner
        filed = {(r["change"]["action"], _model_id(r)) for r in requests}
        # the revisions a rollback was asked from: the guard's swap, or where a person was
        rolled_back = {
            (r["change"].get("evidence") or {}).get("swap_revision", r["change"]["base_revision"])
            for r in requests
            if r["change"]["action"] == "rollback"
        }
        champion = self.view.model_by_id(d["champion"]["model_id"])
        if champion is None:
            return None
        reports = self.view.drift(name)
        return (
            self._guard(d, policy, champion, reports, rolled_back)
            or self._judge(d, policy, champion, reports, requests, filed)
            or self._candidate(d, policy, champion, filed)
            or self._retrain(d, policy, champion, reports, requests)
        )

    # -- the rollback guard ----------------------------------------------------------------

    def _swap(self, d: Mapping[str, Any]) -> tuple[Mapping[str, Any], Mapping[str, Any]] | None:
        """The latest revision that changed the champion, and the one before it."""
        history = sorted(self.view.history(d["name"]), key=lambda h: h["revision"])
        for before, after in reversed(list(zip(history, history[1:], strict=False))):
            if before["champion"]["model_id"] != after["champion"]["model_id"]:
                return before, after
        return None

    def _guard(self, d, policy, champion, reports, rolled_back) -> str | None:
        windows = policy["rollback_windows"]
        swap = self._swap(d) if windows else None
        if swap is None:
            return None
        before, after = swap
        done = (d["name"], int(after["revision"]))
        if done in self._guarded or after["revision"] in rolled_back:
            return None
        if self._action_of(d["name"], after) == "rollback":
            self._guarded.add(done)
            return None
        found = release_evidence.guard(
            reports,
            before["champion"]["model_id"],
            after["champion"]["model_id"],
            champion["task"],
            int(after["updated_at"]),
            windows,
            policy["rollback_margin"],
        )
        if found.decision == "keep":
            self._guarded.add(done)
        if found.decision != "rollback":
            return None
        old, new = before["champion"], after["champion"]
        reason = (
            f"release policy, rollback guard: {new['model_name']} v{new['version']} does worse "
            f"than v{old['version']} did: {found.reason}"
        )
        body = {"action": "rollback", "to_revision": before["revision"], "reason": reason}
        evidence = {**found.evidence(), "swap_revision": after["revision"]}
        return self._file(d, policy, body, "rollback", evidence)

    def _action_of(self, name: str, revision: Mapping[str, Any]) -> str | None:
        """The action of the request whose approval made this revision."""
        for event in self.view.audit(name, limit=500):
            if event["action"] == "approve" and event["new_revision"] == revision["revision"]:
                return json.loads(event["payload"]).get("action")
        return None

    # -- judging shadow challengers -------------------------------------------------------

    def _judge(self, d, policy, champion, reports, requests, filed) -> str | None:
        added = {
            _model_id(r): int(r["decision"]["at"])
            for r in requests
            if r["requested_by"] == CONTROLLER.name
            and r["change"]["action"] == "add_challenger"
            and r["status"] == "approved"
        }
        for c in d["challengers"]:
            model = c["model"]
            since = added.get(model["model_id"])
            if since is None:
                continue  # someone else's challenger: theirs to decide
            verdict = release_evidence.judge(
                reports, champion["model_id"], model["model_id"], champion["task"], policy, since
            )
            if verdict.decision == "promote" and ("set_champion", model["model_id"]) in filed:
                # promoted once and rolled back (or the promotion was rejected): not again
                verdict = dataclasses.replace(
                    verdict, decision="retire", reason=f"promoted once already; {verdict.reason}"
                )
            action = {"promote": "set_champion", "retire": "remove_challenger"}.get(
                verdict.decision
            )
            if action is None or (action, model["model_id"]) in filed:
                continue  # waiting for evidence, or an owner turned this decision down
            who = f"{model['model_name']} v{model['version']}"
            body = {
                "action": action,
                "model": {"name": model["model_name"], "version": model["version"]},
                "reason": f"release policy: {verdict.decision} {who}: {verdict.reason}",
            }
            return self._file(d, policy, body, verdict.decision, verdict.evidence())
        return None

    # -- a newer version ------------------------------------------------------------------

    def _candidate(self, d, policy, champion, filed) -> str | None:
        named = {m for _a, m in filed}
        present = {d["champion"]["model_id"], *(c["model"]["model_id"] for c in d["challengers"])}
        newer = sorted(
            (v, mid)
            for v, mid in self.view.versions(champion["name"]).items()
            if v > champion["version"] and mid not in named and mid not in present
        )
        if not newer:
            return None
        version, model_id = newer[-1]
        if (d["name"], model_id) in self._refused:
            return None
        ref = {"name": champion["name"], "version": version}
        shadow = policy["action"] == "shadow"
        body = {
            "action": "add_challenger" if shadow else "set_champion",
            "model": ref,
            "weight": 0.0,
            "reason": (
                f"release policy: {champion['name']} v{version} is newer than champion "
                f"v{champion['version']}: "
                + ("it scores in shadow until the evidence decides" if shadow else "it replaces it")
            ),
        }
        try:
            return self._file(d, policy, body, "shadow" if shadow else "replace", {})
        except Refused:
            self._refused.add((d["name"], model_id))
            raise

    # -- retraining -----------------------------------------------------------------------

    def _retrain(self, d, policy, champion, reports, requests) -> str | None:
        every, after_labels = policy["retrain_every_seconds"], policy["retrain_after_labels"]
        if not every and not after_labels:
            return None
        ours = {
            _model_id(r)
            for r in requests
            if r["requested_by"] == CONTROLLER.name and r["change"]["action"] == "add_challenger"
        }
        if any(c["model"]["model_id"] in ours for c in d["challengers"]):
            return None  # the version it shadows is judged first
        name = d["name"]
        versions = self.view.versions(champion["name"])
        newest = self.view.model_by_id(versions[max(versions)]) if versions else None
        asked = [
            e["at"]
            for e in self.view.audit(name, limit=500)
            if e["action"] == "retrain" and e["actor"] == CONTROLLER.name
        ]
        since = max([newest["created_at"] if newest else 0, *asked])
        now = self.governor.clock()
        joined = sum(
            r["labels_joined"]
            for r in reports
            if r["model_id"] == champion["model_id"] and r["window_start"] >= since
        )
        evidence = {"decision": "retrain", "since": since, "labels_joined": joined}
        if every and now - since >= every * 1000:
            reason = f"schedule: {(now - since) / 1000:.0f} s since the newest version or retrain"
            evidence["trigger"] = "schedule"
        elif after_labels and joined >= after_labels:
            reason = f"{joined} labelled events joined for the champion since the newest version"
            evidence["trigger"] = "labels"
        else:
            return None
        reason = f"release policy: retrain {name}: {reason}"
        self.governor.retrain(name, CONTROLLER, reason, evidence)
        self.counted("retrain")
        log.info("release controller: %s", reason)
        return f"{name}: retrain, asked: {reason}"

    # -- filing ---------------------------------------------------------------------------

    def _file(
        self,
        d: Mapping[str, Any],
        policy: Mapping[str, Any],
        body: dict[str, Any],
        decision: str,
        evidence: Mapping[str, Any],
    ) -> str:
        name = d["name"]
        answer = self.governor.request(
            name, body, CONTROLLER, evidence={"decision": decision, **evidence}
        )
        if answer["status"] == "pending" and policy["approval"] == "auto":
            answer = self.governor.approve(
                answer["request_id"], RELEASE_POLICY, "release policy: approval auto"
            )
        self.counted(decision)
        said = f"{name}: {decision} ({body['action']}), {answer['status']}: {body['reason']}"
        log.info("release controller: %s", said)
        return said


class ControllerThread:
    """Runs `tick` every `interval_s` until stopped; a failed round is logged and retried."""

    def __init__(self, controller: ReleaseController, interval_s: float) -> None:
        self.controller, self.interval_s = controller, interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="release-controller", daemon=True)

    def start(self) -> ControllerThread:
        """Start the rounds."""
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.controller.tick()
            except (RetryableError, redis.RedisError) as exc:  # Kafka or Redis away: retried
                log.warning("release controller: %s; retrying", exc)
            except Exception:  # a bug must not stop governance for every other deployment
                log.exception("release controller round failed; retrying")

    def stop(self) -> None:
        """Stop after the round in progress."""
        self._stop.set()
        self._thread.join(10)
