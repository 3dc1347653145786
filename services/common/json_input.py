"""Plain JSON objects for the topics people type into by hand (events, actuals).

The same fields as the Avro record; `event_time` / `actual_time` may be omitted (now), epoch
milliseconds, or an ISO-8601 string. Anything else is refused with the field named.

>>> from_json("Actual", b'{"association_id": "a", "deployment": "d", "label": 1}')["label"]
1.0
"""

from __future__ import annotations

import datetime as dt
import json
import time
from typing import Any

from services.common.errors import PoisonMessage, Reason

FIELDS = {
    "FeatureEvent": {"association_id", "deployment", "event_time", "features", "attributes"},
    "Actual": {"association_id", "deployment", "label", "actual_time"},
}


def _wrong(detail: str) -> PoisonMessage:
    return PoisonMessage(Reason.WRONG_TYPE, detail)


def _text(obj: dict[str, Any], key: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str) or not value:
        raise _wrong(f"{key} must be a non-empty string, got {type(value).__name__}")
    return value


def _millis(obj: dict[str, Any], key: str) -> int:
    value = obj.get(key)
    if value is None:
        return int(time.time() * 1000)
    if isinstance(value, bool):
        raise _wrong(f"{key} must be epoch milliseconds or ISO-8601")
    if isinstance(value, int | float):
        return int(value)
    if isinstance(value, str):
        try:
            parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise _wrong(f"{key} {value[:40]!r} is not ISO-8601") from None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=dt.UTC)
        return int(parsed.timestamp() * 1000)
    raise _wrong(f"{key} must be epoch milliseconds or ISO-8601")


def _scalar(value: Any, what: str) -> float | str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _wrong(f"{what} must be a number, a string or null, got {type(value).__name__}")
    return float(value)


def from_json(name: str, data: bytes) -> dict[str, Any]:
    """A record dict from a JSON object; raises PoisonMessage."""
    try:
        obj = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise PoisonMessage(Reason.INVALID_JSON, str(exc)[:200]) from None
    if not isinstance(obj, dict):
        raise _wrong(f"expected a JSON object, got {type(obj).__name__}")
    unknown = set(obj) - FIELDS[name]
    if unknown:
        raise _wrong(f"unknown fields for {name}: {', '.join(sorted(unknown))}")
    if name == "FeatureEvent":
        features = obj.get("features")
        if not isinstance(features, dict):
            raise _wrong(f"features must be an object, got {type(features).__name__}")
        attributes = obj.get("attributes") or {}
        if not isinstance(attributes, dict) or not all(
            isinstance(v, str) for v in attributes.values()
        ):
            raise _wrong("attributes must be an object of strings")
        return {
            "association_id": _text(obj, "association_id"),
            "deployment": _text(obj, "deployment"),
            "event_time": _millis(obj, "event_time"),
            "features": {str(k): _scalar(v, f"feature {k!r}") for k, v in features.items()},
            "attributes": attributes,
        }
    label = _scalar(obj.get("label"), "label")
    if label is None:
        raise _wrong("label is required")
    return {
        "association_id": _text(obj, "association_id"),
        "deployment": _text(obj, "deployment"),
        "label": label,
        "actual_time": _millis(obj, "actual_time"),
    }
