"""Retrain outcomes as alerting reads them: the trainer's answers, as breach-shaped alert input.

The trainer answers each retrain request it trains for with a RetrainOutcome on
`retrain_outcomes`. A retrain that `failed` fires a critical alert, one that was `refused` a
warning, both of kind `retrain` with metric `retrain_<outcome>`; a `published` one resolves
both; a `rejected` one (the gate kept the champion) is a normal result, not an alert. Each
becomes the same breach-shaped input a ThresholdBreach is (`alert.alert_from_breach`), so
routing, grouping, dedup, silences and delivery are the breaches' own. In that input the value
is the attempts made (there is no threshold) and the window is the outcome's instant.

>>> outcome = {"outcome_id": "o1", "request_id": "rt_1", "deployment": "credit",
...            "outcome": "failed", "detail": "KafkaException: broker down", "model_id": None,
...            "version": None, "attempts": 3, "at": 1_700_000_000_000}
>>> check_outcome(outcome, now=1_700_000_000.0)
>>> [(b["metric"], b["severity"], b["status"]) for b in breaches_from_outcome(outcome)]
[('retrain_failed', 'critical', 'firing')]
>>> breaches_from_outcome(outcome)[0]["description"]
'retrain failed after 3 attempt(s) (request rt_1): KafkaException: broker down'
>>> [b["metric"] for b in breaches_from_outcome({**outcome, "outcome": "published"})]
['retrain_failed', 'retrain_refused']
>>> breaches_from_outcome({**outcome, "outcome": "rejected"})
[]
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from services.alerting.alert import RETRAIN
from services.common.errors import PoisonMessage, Reason

OUTCOMES = frozenset({"published", "rejected", "refused", "failed"})
SEVERITY = {"failed": "critical", "refused": "warning"}  # the outcomes that fire, and how loudly
MAX_DETAIL = 2000  # characters of detail in an alert (the trainer sends no more)
MAX_AT_MS = 253_402_300_799_999  # 9999-12-31: the last instant a payload can render
# A trainer's clock may run a little ahead; an outcome from much further ahead would make every
# later outcome of its deployment look like a replay.
MAX_FUTURE_S = 300.0


def check_outcome(outcome: Mapping[str, Any], now: float) -> None:
    """Raise PoisonMessage naming the first way a decoded RetrainOutcome is unusable."""
    for key in ("outcome_id", "request_id", "deployment"):
        if not isinstance(outcome.get(key), str) or not outcome[key]:
            raise PoisonMessage(Reason.WRONG_TYPE, f"{key} must be a non-empty string")
    if outcome.get("outcome") not in OUTCOMES:
        raise PoisonMessage(
            Reason.WRONG_TYPE, f"outcome {outcome.get('outcome')!r} not in {sorted(OUTCOMES)}"
        )
    if not isinstance(outcome.get("detail"), str):
        raise PoisonMessage(Reason.WRONG_TYPE, "detail must be a string")
    if outcome.get("model_id") is not None and not isinstance(outcome["model_id"], str):
        raise PoisonMessage(Reason.WRONG_TYPE, "model_id must be a string or null")
    if outcome.get("version") is not None and not _is_int(outcome["version"]):
        raise PoisonMessage(Reason.WRONG_TYPE, "version must be an integer or null")
    for key in ("attempts", "at"):
        if not _is_int(outcome.get(key)):
            raise PoisonMessage(Reason.WRONG_TYPE, f"{key} must be an integer")
    if outcome["attempts"] < 0:
        raise PoisonMessage(Reason.OUT_OF_RANGE, f"attempts {outcome['attempts']} is not a count")
    at = outcome["at"]
    if not 0 < at <= MAX_AT_MS:
        raise PoisonMessage(Reason.OUT_OF_RANGE, f"at {at} is not a time")
    if at > (now + MAX_FUTURE_S) * 1000:
        raise PoisonMessage(
            Reason.FUTURE_EVENT_TIME, f"at {at} is more than {MAX_FUTURE_S:.0f} s ahead of now"
        )


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def breaches_from_outcome(outcome: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The breach-shaped alert input for one checked outcome: a firing one, resolutions, none."""
    kind = outcome["outcome"]
    if kind == "published":
        return [_breach(outcome, metric, "resolved") for metric in SEVERITY]
    if kind in SEVERITY:
        return [_breach(outcome, kind, "firing")]
    return []


def _breach(outcome: Mapping[str, Any], fired_by: str, status: str) -> dict[str, Any]:
    """One breach-shaped record about the `retrain_<fired_by>` alert of the deployment."""
    at = outcome["at"]
    detail = outcome["detail"][:MAX_DETAIL]
    return {
        "breach_id": outcome["outcome_id"],
        "deployment": outcome["deployment"],
        "kind": RETRAIN,
        "metric": f"retrain_{fired_by}",
        "feature": None,
        "severity": SEVERITY[fired_by],
        "status": status,
        "value": outcome["attempts"],
        "threshold": 0,
        "window_start": at,
        "window_end": at,
        "model_id": outcome.get("model_id") or "",
        "model_version": outcome.get("version") if outcome.get("version") is not None else "",
        "observed_at": at,
        "labels": {},
        "summary": f"retrain {outcome['outcome']} for {outcome['deployment']}",
        "description": (
            f"retrain {outcome['outcome']} after {outcome['attempts']} attempt(s) "
            f"(request {outcome['request_id']}): {detail}"
        ),
    }
