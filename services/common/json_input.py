"""Plain JSON objects for the topics people and other services write by hand.

Events and actuals take the same fields as the Avro record. A prediction reported by a service
of the user's own (an external deployment) takes the fields such a service knows (the rest are
filled in, see ``PREDICTION_DEFAULTS``). `event_time` / `actual_time` may be omitted (now),
epoch milliseconds, or an ISO-8601 string, within the years ISO-8601 can write (1 to 9999).
Anything else is refused with the field named: NaN and Infinity, numbers too large for their
field, strings that are not valid Unicode, nesting too deep to parse, unknown fields.

>>> from_json("Actual", b'{"association_id": "a", "deployment": "d", "label": 1}')["label"]
1.0
"""

from __future__ import annotations

import datetime as dt
import json
import math
import numbers
import time
from collections.abc import Mapping
from typing import Any

from services.common.errors import PoisonMessage, Reason

FIELDS = {
    "FeatureEvent": {"association_id", "deployment", "event_time", "features", "attributes"},
    "Actual": {"association_id", "deployment", "label", "actual_time"},
    # model_* are required: drift counts a prediction only when its model_id is the champion's,
    # and the record has no "unknown model" value to invent for a missing name or version.
    "Prediction": {
        "association_id",
        "deployment",
        "model_name",
        "model_version",
        "model_id",
        "prediction",
        "probabilities",
        "event_time",
    },
}
# What a reported prediction is, whoever reports it: the answer of the deployment's champion,
# scored outside any scorer (so no input partition or offset).
PREDICTION_DEFAULTS = {
    "role": "champion",
    "served": True,
    "humility": [],
    "overridden": False,
    "input_partition": -1,
    "input_offset": -1,
}
MAX_LONG = 2**63 - 1
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


def _text(obj: Mapping[str, Any], key: str) -> str:
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


def _millis(obj: Mapping[str, Any], key: str) -> int:
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
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise _wrong(f"{what} must be a number, a string or null, got {type(value).__name__}")
    return _double(value, what)


def _double(value: numbers.Real, what: str) -> float:
    try:
        return float(value)
    except OverflowError:
        raise PoisonMessage(Reason.OUT_OF_RANGE, f"{what} is beyond a double") from None


def _names(obj: Mapping[Any, Any], what: str) -> None:
    for key in obj:
        if not isinstance(key, str):
            raise _wrong(f"{what} names must be strings, got {type(key).__name__}")
        _unicode(key, f"a name in {what}")


def from_json(name: str, data: bytes) -> dict[str, Any]:
    """A record dict from a JSON object; raises PoisonMessage."""
    try:
        obj = json.loads(data)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        # RecursionError: arrays or objects nested deeper than the parser's recursion limit.
        raise PoisonMessage(Reason.INVALID_JSON, str(exc)[:200]) from None
    return from_object(name, obj)


def from_object(name: str, obj: Any) -> dict[str, Any]:
    """A record dict from a parsed JSON object (or a Python mapping of the same fields);
    raises PoisonMessage naming the field."""
    if not isinstance(obj, Mapping):
        raise _wrong(f"expected a JSON object, got {type(obj).__name__}")
    unknown = set(obj) - FIELDS[name]
    if unknown:
        raise _wrong(f"unknown fields for {name}: {', '.join(sorted(map(str, unknown)))}")
    return _BUILDERS[name](obj)


def _feature_event(obj: Mapping[str, Any]) -> dict[str, Any]:
    features = obj.get("features")
    if not isinstance(features, Mapping):
        raise _wrong(f"features must be an object, got {type(features).__name__}")
    _names(features, "features")
    attributes = obj.get("attributes") or {}
    if not isinstance(attributes, Mapping) or not all(
        isinstance(v, str) for v in attributes.values()
    ):
        raise _wrong("attributes must be an object of strings")
    _names(attributes, "attributes")
    for v in attributes.values():
        _unicode(v, "an attribute")
    return {
        "association_id": _text(obj, "association_id"),
        "deployment": _text(obj, "deployment"),
        "event_time": _millis(obj, "event_time"),
        "features": {k: _scalar(v, f"feature {k!r}") for k, v in features.items()},
        "attributes": dict(attributes),
    }


def _actual(obj: Mapping[str, Any]) -> dict[str, Any]:
    label = _scalar(obj.get("label"), "label")
    if label is None:
        raise _wrong("label is required")
    return {
        "association_id": _text(obj, "association_id"),
        "deployment": _text(obj, "deployment"),
        "label": label,
        "actual_time": _millis(obj, "actual_time"),
    }


def _version(obj: Mapping[str, Any]) -> int:
    value = obj.get("model_version")
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise _wrong(f"model_version must be an integer, got {type(value).__name__}")
    if not 1 <= value <= MAX_LONG:
        raise PoisonMessage(Reason.OUT_OF_RANGE, f"model_version {str(value)[:30]} is not >= 1")
    return int(value)


def _probabilities(obj: Mapping[str, Any]) -> dict[str, float]:
    given = obj.get("probabilities")
    if given is None:
        return {}
    if not isinstance(given, Mapping):
        raise _wrong(f"probabilities must be an object, got {type(given).__name__}")
    _names(given, "probabilities")
    out = {}
    for k, v in given.items():
        if isinstance(v, bool) or not isinstance(v, numbers.Real):
            raise _wrong(f"probability of {k!r} must be a number, got {type(v).__name__}")
        out[k] = _double(v, f"probability of {k!r}")
    return out


def _prediction(obj: Mapping[str, Any]) -> dict[str, Any]:
    prediction = _scalar(obj.get("prediction"), "prediction")
    if prediction is None:
        raise _wrong("prediction is required (a class label or a number)")
    now = int(time.time() * 1000)
    return {
        "association_id": _text(obj, "association_id"),
        "deployment": _text(obj, "deployment"),
        "model_name": _text(obj, "model_name"),
        "model_version": _version(obj),
        "model_id": _text(obj, "model_id"),
        **PREDICTION_DEFAULTS,
        "humility": [],
        "prediction": prediction,
        "probabilities": _probabilities(obj),
        "event_time": _millis(obj, "event_time"),
        "scored_time": now,
    }


_BUILDERS = {"FeatureEvent": _feature_event, "Actual": _actual, "Prediction": _prediction}
