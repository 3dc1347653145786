"""The retrain policy: K consecutive breached windows of a deployment's triggers ask for a retrain.

A series is one (deployment, kind, metric, feature). The drift service sends a firing breach for
every window a threshold stays breached. Each firing breach that counts for its deployment, for
a later window than the series' last, extends the series' streak when the windows follow each
other (the gap between them is under half a window: count windows end at their last event and
the next starts at its first) and restarts it at 1 after a missing window; a resolved breach ends
the streak. When any series of a deployment reaches K, one `RetrainRequest` is produced; no second
one for that deployment until `completed(deployment)`, after which streaks start over.

K and the breaches that count are the deployment's (`Triggers`, from its Deployment record:
`policy.retrain_after_windows`, and `release.retrain_on`, breach kinds or metrics such as
`change_point`); alerting's config (`RetrainConfig`) is the fallback for a deployment never
seen, and its `kinds` for one whose `retrain_on` is empty. A changed Deployment takes effect at
the next breach; streaks are kept.
Replayed or older windows change nothing, so redelivery after a crash cannot double count.
State is plain JSON.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Mapping
from typing import Any

MAX_SERIES = 100_000
MAX_DEPLOYMENTS = 10_000  # deployments whose retrain triggers are remembered


@dataclasses.dataclass(frozen=True)
class RetrainConfig:
    """Alerting's fallback: retrain after `after_windows` breached windows of one of `kinds`."""

    after_windows: int = 3
    kinds: frozenset[str] = frozenset({"accuracy", "data_drift"})


@dataclasses.dataclass(frozen=True)
class Triggers:
    """One deployment's K, and the breach kinds or metrics that count (empty: config's kinds)."""

    after_windows: int
    retrain_on: frozenset[str] = frozenset()

    @classmethod
    def from_deployment(cls, deployment: Mapping[str, Any]) -> Triggers | None:
        """The triggers of a Deployment record; None when it has no policy.

        >>> Triggers.from_deployment({"policy": {"retrain_after_windows": 2}, "release": None})
        Triggers(after_windows=2, retrain_on=frozenset())
        """
        k = (deployment.get("policy") or {}).get("retrain_after_windows")
        if k is None:
            return None
        retrain_on = (deployment.get("release") or {}).get("retrain_on") or ()
        # The registry allows 1..10000; a 0 from another writer must not fire on every breach.
        return cls(max(1, int(k)), frozenset(str(x) for x in retrain_on))


@dataclasses.dataclass(frozen=True)
class RetrainRequest:
    """Ask the trainer for a new model version of one deployment."""

    request_id: str
    deployment: str
    model_id: str
    model_version: int | str
    kind: str
    metric: str
    feature: str | None
    windows: int
    window_start: int
    window_end: int
    breach_ids: tuple[str, ...]
    requested_at: float
    after_windows: int  # the K the series reached
    from_deployment: bool  # K is the deployment's own (else alerting's config)

    @property
    def reason(self) -> str:
        """Which series reached K, and K (with where it came from)."""
        source = "policy.retrain_after_windows" if self.from_deployment else "alerting's config"
        on = f" on {self.feature}" if self.feature else ""
        return (
            f"{self.kind} {self.metric}{on} breached for {self.windows} windows "
            f"(K={self.after_windows}, {source})"
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able form."""
        return {**dataclasses.asdict(self), "breach_ids": list(self.breach_ids)}


@dataclasses.dataclass
class _Streak:
    count: int
    first_start: int
    last_start: int
    last_end: int
    breach_ids: list[str]


class RetrainPolicy:
    """Counts consecutive breached windows per series and emits retrain requests."""

    def __init__(self, config: RetrainConfig) -> None:
        self.config = config
        self._streaks: dict[str, _Streak] = {}
        self._in_flight: dict[str, str] = {}  # deployment -> request id
        self._triggers: dict[str, Triggers] = {}  # deployment -> its own, oldest change first

    def configure(self, deployment: str, triggers: Triggers) -> bool:
        """Use `triggers` for this deployment's next breaches; True when they changed."""
        if self._triggers.get(deployment) == triggers:
            return False
        self._triggers.pop(deployment, None)  # re-inserted last: the dict is oldest first
        self._triggers[deployment] = triggers
        if len(self._triggers) > MAX_DEPLOYMENTS:
            self._triggers.pop(next(iter(self._triggers)))
        return True

    def triggers(self, deployment: str) -> Triggers | None:
        """The deployment's own triggers, None while its Deployment was never seen."""
        return self._triggers.get(deployment)

    def _counts(self, breach: Mapping[str, Any], triggers: Triggers | None) -> bool:
        if triggers is not None and triggers.retrain_on:
            return breach["kind"] in triggers.retrain_on or breach["metric"] in triggers.retrain_on
        return breach["kind"] in self.config.kinds

    def observe(self, breach: Mapping[str, Any], now: float) -> RetrainRequest | None:
        """Take one (already validated) ThresholdBreach; a RetrainRequest when the policy fires."""
        deployment = breach["deployment"]
        triggers = self._triggers.get(deployment)
        if not self._counts(breach, triggers):
            return None
        k = self.config.after_windows if triggers is None else triggers.after_windows
        series = "\x1f".join(
            (deployment, breach["kind"], breach["metric"], breach.get("feature") or "")
        )
        streak = self._streaks.get(series)
        start, end = int(breach["window_start"]), int(breach["window_end"])
        if streak is not None and start <= streak.last_start:
            return None  # the same window again (another message for it) or an older one
        if breach["status"] != "firing":
            self._streaks.pop(series, None)
            return None
        if (
            streak is not None
            and start - streak.last_end < (streak.last_end - streak.last_start) / 2
        ):
            if streak.count == 0:  # the first window after a completed retrain
                streak.first_start = start
            streak.count += 1
            streak.last_start, streak.last_end = start, end
            streak.breach_ids = [*streak.breach_ids, breach["breach_id"]][-k:]
        else:
            streak = _Streak(1, start, start, end, [breach["breach_id"]])
            self._streaks[series] = streak
            if len(self._streaks) > MAX_SERIES:
                self._streaks.pop(next(iter(self._streaks)))
        if streak.count < k or deployment in self._in_flight:
            return None
        raw = f"{deployment}|{series}|{streak.first_start}|{end}"
        request = RetrainRequest(
            request_id="rt_" + hashlib.sha256(raw.encode()).hexdigest()[:24],
            deployment=deployment,
            model_id=breach["model_id"],
            model_version=breach["model_version"],
            kind=breach["kind"],
            metric=breach["metric"],
            feature=breach.get("feature"),
            windows=streak.count,
            window_start=streak.first_start,
            window_end=end,
            breach_ids=tuple(streak.breach_ids),
            requested_at=now,
            after_windows=k,
            from_deployment=triggers is not None,
        )
        self._in_flight[deployment] = request.request_id
        return request

    def in_flight(self, deployment: str) -> str | None:
        """The id of the outstanding request for this deployment, if any."""
        return self._in_flight.get(deployment)

    def completed(self, deployment: str) -> None:
        """The retrain finished (either way): allow another, after a fresh run of K windows."""
        self._in_flight.pop(deployment, None)
        prefix = deployment + "\x1f"
        # Keep the last window seen so replays stay ignored, but restart the count.
        for series, streak in self._streaks.items():
            if series.startswith(prefix):
                streak.count = 0
                streak.first_start = streak.last_end
                streak.breach_ids = []

    def state(self) -> dict[str, Any]:
        """Everything, as plain JSON-able data."""
        return {
            "streaks": {
                k: {**vars(v), "breach_ids": list(v.breach_ids)} for k, v in self._streaks.items()
            },
            "in_flight": dict(self._in_flight),
            "triggers": {
                k: {"after_windows": v.after_windows, "retrain_on": sorted(v.retrain_on)}
                for k, v in self._triggers.items()
            },
        }

    @classmethod
    def from_state(cls, config: RetrainConfig, state: Mapping[str, Any]) -> RetrainPolicy:
        """Inverse of `state()`."""
        policy = cls(config)
        policy._streaks = {k: _Streak(**v) for k, v in state["streaks"].items()}
        policy._in_flight = dict(state["in_flight"])
        policy._triggers = {  # absent in states saved before
            k: Triggers(int(v["after_windows"]), frozenset(v["retrain_on"]))
            for k, v in state.get("triggers", {}).items()
        }
        return policy
