"""The alerting state machine: breaches in, notifications and retrain requests out.

One object holds everything the service decides with: a grouper per route, the silences and
acknowledgements, and the retrain policy. It does no I/O and reads no clock (time is passed in),
so the app persists `state()` to Redis after every change and a restarted process continues from
`from_state()`. Replayed breaches change nothing (grouping and the retrain policy both ignore
older or identical observations), so at-least-once consumption is safe.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from services.alerting.alert import alert_from_breach
from services.alerting.grouping import Grouper, Notification
from services.alerting.retrain_policy import RetrainPolicy, RetrainRequest
from services.alerting.routing import AlertingConfig
from services.alerting.silences import Silences

STATE_VERSION = 1


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

    def on_breach(self, breach: Mapping[str, Any], now: float) -> RetrainRequest | None:
        """Take one ThresholdBreach (PoisonMessage if malformed); a retrain request if due."""
        alert = alert_from_breach(breach, dashboard_url=self.dashboard_url)
        # A resolution goes to every grouper: the firing alert may have been routed by a severity
        # it no longer has; groupers that never saw the fingerprint ignore it.
        routes = self.config.match(alert.labels) if alert.firing else self.config.routes()
        for route in routes:
            self.groupers[route.key].ingest(alert, now)
        request = self.retrain.observe(breach, now)
        if request is not None:
            self._retrain_since[request.deployment] = now
        return request

    def on_deployment(self, deployment: Mapping[str, Any]) -> bool:
        """A Deployment record: a new champion ends the deployment's retrain in flight."""
        name = deployment["name"]
        champion = (deployment.get("champion") or {}).get("model_id")
        before = self._champions.get(name)
        if champion is None or champion == before:
            return False
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
