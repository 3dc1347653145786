"""The alerting state machine: breaches and retrain outcomes in, notifications and retrains out.

One object holds everything the service decides with: a grouper per route, the silences and
acknowledgements, and the retrain policy. It does no I/O and reads no clock (time is passed in),
so the app persists `state()` to Redis after every change and a restarted process continues from
`from_state()`. Replayed breaches change nothing (grouping and the retrain policy both ignore
older or identical observations), so at-least-once consumption is safe.

Each Deployment record sets its deployment's retrain triggers (`policy.retrain_after_windows`
and `release.retrain_on`; see `retrain_policy.py`), kept in the retrain policy's state.

A retrain request stays in flight (no second one for its deployment) until the trainer's
outcome answers it, a new champion appears, or `retrain_timeout_s` passes. An outcome answers
it when it names the request, or when the trainer answered at or after the request was made
(the trainer then counts the request as answered and sends no outcome of its own for it). A
`published` outcome leaves it in flight: the new version is a challenger, and asking again
before it is promoted (the new champion ends the request) would train yet another one. Outcomes
of a deployment arrive in order (one partition, keyed by deployment), so one no newer than the
last handled is a replay and changes nothing. Outcomes also raise and resolve `retrain` alerts
through the breaches' own path (`retrain_outcome.py`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from services.alerting.alert import RETRAIN, Alert, alert_from_breach
from services.alerting.grouping import Grouper, Notification
from services.alerting.retrain_outcome import breaches_from_outcome, check_outcome
from services.alerting.retrain_policy import RetrainPolicy, RetrainRequest, Triggers
from services.alerting.routing import AlertingConfig
from services.alerting.silences import Silences
from services.common.errors import PoisonMessage, Reason

STATE_VERSION = 1
MAX_OUTCOME_DEPLOYMENTS = 10_000  # deployments whose newest outcome time is remembered


class Engine:
    """Routes, groups, silences and times alerts; asks for retraining by policy."""

    def __init__(
        self,
        config: AlertingConfig,
        *,
        dashboard_url: str = "",
        retrain_timeout_s: float = 3600.0,
    ) -> None:
        self.config = config
        self.dashboard_url = dashboard_url
        self.retrain_timeout_s = retrain_timeout_s
        self.groupers = {route.key: Grouper(route) for route in config.routes()}
        self.silences = Silences()
        self.retrain = RetrainPolicy(config.retrain)
        self._retrain_since: dict[str, float] = {}  # deployment -> when its request went out
        self._champions: dict[str, str] = {}  # deployment -> champion model id last seen
        self._outcome_at: dict[str, int] = {}  # deployment -> `at` of its newest outcome seen

    def on_breach(self, breach: Mapping[str, Any], now: float) -> RetrainRequest | None:
        """Take one ThresholdBreach (PoisonMessage if malformed); a retrain request if due."""
        if breach.get("kind") == RETRAIN:
            raise PoisonMessage(Reason.WRONG_TYPE, "kind 'retrain' is alerting's own, no breach's")
        self._ingest(alert_from_breach(breach, dashboard_url=self.dashboard_url), now)
        request = self.retrain.observe(breach, now)
        if request is not None:
            self._retrain_since[request.deployment] = now
        return request

    def on_retrain_outcome(self, outcome: Mapping[str, Any], now: float) -> bool:
        """Take one RetrainOutcome (PoisonMessage if malformed); True when the state changed.

        It may end the deployment's retrain in flight, and raises or resolves its retrain alert.
        """
        check_outcome(outcome, now)
        deployment, at = outcome["deployment"], outcome["at"]
        if at <= self._outcome_at.get(deployment, 0):
            return False  # a replay, or older than what was handled
        alerts = [
            alert_from_breach(b, dashboard_url=self.dashboard_url)
            for b in breaches_from_outcome(outcome)
        ]
        self._outcome_at.pop(deployment, None)  # re-inserted last: the dict is oldest first
        self._outcome_at[deployment] = at
        if len(self._outcome_at) > MAX_OUTCOME_DEPLOYMENTS:
            self._outcome_at.pop(next(iter(self._outcome_at)))
        if outcome["outcome"] != "published" and self._answers(outcome):
            self.retrain.completed(deployment)
            self._retrain_since.pop(deployment, None)
        for alert in alerts:
            self._ingest(alert, now)
        return True

    def _answers(self, outcome: Mapping[str, Any]) -> bool:
        """True when `outcome` answers the deployment's retrain request in flight."""
        deployment = outcome["deployment"]
        request_id = self.retrain.in_flight(deployment)
        if request_id is None:
            return False
        since = self._retrain_since.get(deployment)
        made_before = since is not None and int(since * 1000) <= outcome["at"]
        return outcome["request_id"] == request_id or made_before

    def _ingest(self, alert: Alert, now: float) -> None:
        # A resolution goes to every grouper: the firing alert may have been routed by a severity
        # it no longer has; groupers that never saw the fingerprint ignore it.
        routes = self.config.match(alert.labels) if alert.firing else self.config.routes()
        for route in routes:
            self.groupers[route.key].ingest(alert, now)

    def on_deployment(self, deployment: Mapping[str, Any]) -> bool:
        """A Deployment record: set its retrain triggers; a new champion ends its retrain in flight.

        True when the state changed.
        """
        name = deployment["name"]
        triggers = Triggers.from_deployment(deployment)
        changed = triggers is not None and self.retrain.configure(name, triggers)
        champion = (deployment.get("champion") or {}).get("model_id")
        before = self._champions.get(name)
        if champion is None or champion == before:
            return changed
        self._champions[name] = champion
        if before is not None and self.retrain.in_flight(name):
            self.retrain.completed(name)
            self._retrain_since.pop(name, None)
        return True

    def tick(self, now: float) -> list[Notification]:
        """Flush due groups (silences and acks applied); give up retrains that never finished."""
        notes = [n for g in self.groupers.values() for n in g.due(now, self.silences)]
        for note in notes:
            for alert in note.alerts:
                if not alert.firing:
                    self.silences.on_resolved(alert.fingerprint)
        for deployment, since in list(self._retrain_since.items()):
            if now - since >= self.retrain_timeout_s:
                self.retrain.completed(deployment)
                del self._retrain_since[deployment]
        return notes

    def is_due(self, now: float) -> bool:
        """True when `tick(now)` has something to do (a group timer or a retrain timeout)."""
        due = self.next_due()
        if due is not None and due <= now:
            return True
        return any(now - t >= self.retrain_timeout_s for t in self._retrain_since.values())

    def retrains_in_flight(self) -> int:
        """Deployments with a retrain request outstanding."""
        return len(self._retrain_since)

    def next_due(self) -> float | None:
        """The earliest time `tick` may return a notification."""
        return min(
            (t for g in self.groupers.values() if (t := g.next_due()) is not None), default=None
        )

    def groups(self) -> list[dict[str, Any]]:
        """Every open group with its alerts, for the API."""
        return [g for grouper in self.groupers.values() for g in grouper.groups()]

    def state(self) -> dict[str, Any]:
        """Everything, as plain JSON-able data."""
        return {
            "version": STATE_VERSION,
            "groupers": {key: g.state() for key, g in self.groupers.items()},
            "silences": self.silences.state(),
            "retrain": self.retrain.state(),
            "retrain_since": dict(self._retrain_since),
            "champions": dict(self._champions),
            "outcome_at": dict(self._outcome_at),
        }

    def restore(self, state: Mapping[str, Any]) -> None:
        """Continue from a saved `state()`; routes no longer configured are dropped."""
        if state.get("version") != STATE_VERSION:
            raise ValueError(f"alerting state version {state.get('version')!r} is not supported")
        for route in self.config.routes():
            saved = state["groupers"].get(route.key)
            if saved is not None:
                self.groupers[route.key] = Grouper.from_state(route, saved)
        self.silences = Silences.from_state(state["silences"])
        self.retrain = RetrainPolicy.from_state(self.config.retrain, state["retrain"])
        self._retrain_since = dict(state["retrain_since"])
        self._champions = dict(state["champions"])
        self._outcome_at = dict(state.get("outcome_at", {}))  # absent in states saved before
