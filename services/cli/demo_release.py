"""The demo's release automation: a new model goes to shadow, and is promoted only on evidence.

When a model version newer than the champion appears, an `add_challenger` request puts it in
shadow (it scores every event, its answers are never served). The drift service then reports the
challenger's accuracy next to the champion's on the same joined events, window by window. Once
`min_windows` such windows are in (the first, partial one is skipped), the challenger is promoted
with a `set_champion` request if its mean accuracy beats the champion's by `margin`; otherwise it
is removed. Requests go through the registry like anyone's: the deployment's auto_approve policy
approves them, and the reason says why.

>>> reports = [
...     {"model_id": "a", "metrics": {"accuracy": 0.5},
...      "challengers": [{"model_id": "b", "metrics": {"accuracy": 0.9}}]},
... ] * 3
>>> e = evidence(reports, "a", "b", min_windows=2)
>>> (e.windows, e.decided, e.better(0.02))
(2, True, True)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from services.cli.api_client import ApiClient


@dataclasses.dataclass(frozen=True)
class Evidence:
    """Mean window accuracy of champion and challenger over the windows both were measured in."""

    windows: int
    champion: float | None
    challenger: float | None
    decided: bool

    def better(self, margin: float) -> bool:
        """The challenger beats the champion by at least `margin`."""
        if self.champion is None or self.challenger is None:
            return False
        return self.challenger >= self.champion + margin

    def describe(self) -> str:
        """One line for the progress log and the request's reason."""
        if self.champion is None or self.challenger is None:
            return f"{self.windows} window(s) with both accuracies"
        return (
            f"accuracy {self.challenger:.3f} (challenger) vs {self.champion:.3f} (champion) "
            f"over {self.windows} drift window(s) on the same joined events"
        )


def evidence(
    reports: Sequence[Mapping[str, Any]],
    champion_id: str,
    challenger_id: str,
    min_windows: int = 2,
    skip_first: int = 1,
) -> Evidence:
    """Compare the two models over the drift reports that measured both."""
    pairs: list[tuple[float, float]] = []
    for r in reports:
        if r["model_id"] != champion_id or "accuracy" not in r["metrics"]:
            continue
        for c in r["challengers"]:
            if c["model_id"] == challenger_id and "accuracy" in c["metrics"]:
                pairs.append((r["metrics"]["accuracy"], c["metrics"]["accuracy"]))
    pairs = pairs[skip_first:]
    if not pairs:
        return Evidence(0, None, None, False)
    champ = sum(p[0] for p in pairs) / len(pairs)
    chall = sum(p[1] for p in pairs) / len(pairs)
    return Evidence(len(pairs), champ, chall, len(pairs) >= min_windows)


class Release:
    """Files the shadow and promotion requests for one deployment, each once."""

    def __init__(
        self,
        api: ApiClient,
        deployment: str,
        say: Callable[[str], None],
        min_windows: int = 2,
        margin: float = 0.02,
    ) -> None:
        self.api, self.deployment, self.say = api, deployment, say
        self.min_windows, self.margin = min_windows, margin
        self.candidate: dict[str, Any] | None = None  # the ModelContent in shadow
        self.shadow_request: dict[str, Any] | None = None
        self.promote_request: dict[str, Any] | None = None
        self.verdict: Evidence | None = None
        self.rejected = False

    def _request(self, body: dict[str, Any]) -> dict[str, Any]:
        answer = self.api.post(f"/deployments/{self.deployment}/requests", body)
        self.say(
            f"request {answer['request_id'][:8]} {body['action']} {body['model']['name']} "
            f"v{body['model']['version']}: {answer['status']}"
            + (f" by {answer['decision']['actor']}" if answer.get("decision") else "")
        )
        return answer

    def shadow(self, model: Mapping[str, Any], champion_version: int) -> None:
        """Put `model` (a ModelContent newer than the champion) in shadow."""
        ref = {"name": model["name"], "version": int(model["version"])}
        self.candidate = dict(model)
        self.shadow_request = self._request(
            {
                "action": "add_challenger",
                "model": ref,
                "weight": 0.0,
                "reason": f"release automation: v{ref['version']} (retrained) scores in shadow "
                f"next to champion v{champion_version} until there is evidence",
            }
        )

    def judge(self, reports: Sequence[Mapping[str, Any]], champion_id: str) -> bool:
        """Promote or drop the shadow model once the evidence is in; True when decided."""
        if self.candidate is None or self.promote_request is not None or self.rejected:
            return self.promote_request is not None or self.rejected
        found = evidence(reports, champion_id, self.candidate["model_id"], self.min_windows)
        if not found.decided:
            return False
        self.verdict = found
        ref = {"name": self.candidate["name"], "version": int(self.candidate["version"])}
        if found.better(self.margin):
            self.say(f"promote v{ref['version']}: {found.describe()}")
            self.promote_request = self._request(
                {"action": "set_champion", "model": ref, "reason": "evidence: " + found.describe()}
            )
        else:
            self.say(f"keep the champion, drop v{ref['version']}: {found.describe()}")
            self._request({"action": "remove_challenger", "model": ref, "reason": found.describe()})
            self.rejected = True
        return True
