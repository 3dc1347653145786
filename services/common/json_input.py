"""Plain JSON objects for the topics people type into by hand (events, actuals).

The same fields as the Avro record; `event_time` / `actual_time` may be omitted (now), epoch
milliseconds, or an ISO-8601 string, within the years ISO-8601 can write (1 to 9999). Anything
else is refused with the field named: NaN and Infinity, numbers too large for their field,
strings that are not valid Unicode, nesting too deep to parse.

>>> from_json("Actual", b'{"association_id": "a", "deployment": "d", "label": 1}')["label"]
1.0
"""

from __future__ import annotations

import datetime as dt
import json
import math
import time
from typing import Any

from services.common.errors import PoisonMessage, Reason

FIELDS = {
    "FeatureEvent": {"association_id", "deployment", "event_time", "features", "attributes"},
    "Actual": {"association_id", "deployment", "label", "actual_time"},
}
# The times an ISO-8601 string can write, as epoch milliseconds: far inside an Avro long, so
# window arithmetic on them cannot overflow.
EARLIEST_MS = -62_135_596_800_000  # 0001-01-01T00:00:00Z
LATEST_MS = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z


def _wrong(detail: str) -> PoisonMessage:
    return PoisonMessage(Reason.WRONG_TYPE, detail)


def _unicode(value: str, what: str) -> str:
    # JSON's \ud800 escapes give lone surrogates, which no UTF-8 encoder (Avro, Redis) takes.
    try:
        value.encode()
    except UnicodeEncodeError:
        raise _wrong(f"{what} is not valid Unicode (a lone surrogate)") from None
    return value


def _text(obj: dict[str, Any], key: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str) or not value:
        raise _wrong(f"{key} must be a non-empty string, got {type(value).__name__}")
    return _unicode(value, key)


def _in_range(millis: int | float, key: str) -> int:
    if isinstance(millis, float) and not math.isfinite(millis):
        raise PoisonMessage(Reason.NON_FINITE, f"{key} is {millis}")
    if not EARLIEST_MS <= millis <= LATEST_MS:
        raise PoisonMessage(
            Reason.OUT_OF_RANGE,
            f"{key} {str(millis)[:30]} is outside years 1-9999 in epoch milliseconds",
        )
    return int(millis)


def _millis(obj: dict[str, Any], key: str) -> int:
    value = obj.get(key)
    if value is None:
        return int(time.time() * 1000)
    if isinstance(value, bool):
        raise _wrong(f"{key} must be epoch milliseconds or ISO-8601")
    if isinstance(value, int | float):
        return _in_range(value, key)
    if isinstance(value, str):
        try:
            parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise _wrong(f"{key} {value[:40]!r} is not ISO-8601") from None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=dt.UTC)
        return _in_range(parsed.timestamp() * 1000, key)
    raise _wrong(f"{key} must be epoch milliseconds or ISO-8601")


def _scalar(value: Any, what: str) -> float | str | None:
    if value is None:
        return value
    if isinstance(value, str):
        return _unicode(value, what)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _wrong(f"{what} must be a number, a string or null, got {type(value).__name__}")
    try:
        return float(value)
    except OverflowError:
        raise PoisonMessage(Reason.OUT_OF_RANGE, f"{what} is beyond a double") from None


def from_json(name: str, data: bytes) -> dict[str, Any]:
    """A record dict from a JSON object; raises PoisonMessage."""
    try:
        obj = json.loads(data)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        # RecursionError: arrays or objects nested deeper than the parser's recursion limit.
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
        for k, v in attributes.items():
            _unicode(k + v, "an attribute")
        return {
            "association_id": _text(obj, "association_id"),
            "deployment": _text(obj, "deployment"),
            "event_time": _millis(obj, "event_time"),
            "features": {
                _unicode(k, "a feature name"): _scalar(v, f"feature {k!r}")
                for k, v in features.items()
            },
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
