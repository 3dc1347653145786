"""The records the client writes, built from keyword arguments and checked as readers check them.

Each record goes through the same field checks as JSON typed onto a topic
(services/common/json_input.py), is encoded with services/common/serde.py, and is decoded back
with the reader's guards (size limits, NaN/Inf), so whatever the client sends, the services
accept. A refusal is an `InvalidRecord` naming the field; nothing is sent.

>>> msg = event_message("credit", {"salary": 52000, "car": "3"}, "a-1", 1_760_000_000_000)
>>> msg.key, serde.decode(msg.value, expected="FeatureEvent")[1]["features"]["salary"]
('a-1', 52000.0)
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import numbers
import time
import uuid
from collections.abc import Mapping
from typing import Any, NamedTuple

from services.client.errors import InvalidRecord
from services.common import serde
from services.common.errors import PoisonMessage, Reason
from services.common.json_input import from_object

# Epoch milliseconds, an ISO-8601 string, or a datetime (naive ones are UTC, as in JSON input).
Time = int | float | str | dt.datetime
Value = float | int | str | None


class Message(NamedTuple):
    """One encoded record ready to produce: its record name, key, value and header."""

    record: str
    key: str
    value: bytes
    headers: list[tuple[str, bytes]]


@dataclasses.dataclass(frozen=True)
class ModelRef:
    """The model a reported prediction is attributed to: name, version and model id."""

    name: str
    version: int
    model_id: str

    @classmethod
    def of(cls, value: ModelRef | Mapping[str, Any]) -> ModelRef:
        """From a ModelRef, or a Deployment's champion (`model_name`, `version`, `model_id`)."""
        if isinstance(value, ModelRef):
            return value
        try:
            return cls(str(value["model_name"]), int(value["version"]), str(value["model_id"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(
                f"model must be a ModelRef or a mapping with model_name, version and model_id "
                f"(a deployment's champion): {exc!r}"
            ) from None


def new_association_id() -> str:
    """A fresh association id (random, unique)."""
    return uuid.uuid4().hex


def now_ms() -> int:
    """Now in epoch milliseconds."""
    return int(time.time() * 1000)


def millis(value: Time | None) -> Any:
    """A time as the JSON checks take it: datetimes become epoch milliseconds (naive ones are
    UTC), numpy-like numbers plain floats; the checks refuse anything else, naming the field."""
    if isinstance(value, dt.datetime):
        aware = value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)
        return int(aware.timestamp() * 1000)
    if isinstance(value, numbers.Real) and not isinstance(value, bool | int | float):
        return float(value)
    return value


def encoded(record: str, fields: Mapping[str, Any]) -> Message:
    """Check, encode and re-read one record; raises InvalidRecord naming the field."""
    try:
        built = from_object(record, fields)
        value = serde.encode(record, built)
        serde.decode(value, expected=record)  # the size limits and finiteness a reader checks
    except PoisonMessage as refusal:
        raise InvalidRecord(record, refusal) from None
    except (TypeError, ValueError, OverflowError) as exc:  # the encoder's own refusals
        raise InvalidRecord(record, PoisonMessage(Reason.WRONG_TYPE, str(exc)[:300])) from None
    return Message(record, built["association_id"], value, [serde.fingerprint_header(record)])


def event_message(
    deployment: str,
    features: Mapping[str, Value],
    association_id: str,
    event_time: Time | None = None,
    attributes: Mapping[str, str] | None = None,
) -> Message:
    """A FeatureEvent."""
    fields = {
        "association_id": association_id,
        "deployment": deployment,
        "event_time": millis(event_time),
        "features": features,
        "attributes": attributes or {},
    }
    return encoded("FeatureEvent", fields)


def actual_message(
    deployment: str, association_id: str, label: str | float, actual_time: Time | None = None
) -> Message:
    """An Actual (the true label of an earlier event)."""
    fields = {
        "association_id": association_id,
        "deployment": deployment,
        "label": label,
        "actual_time": millis(actual_time),
    }
    return encoded("Actual", fields)


def prediction_message(
    deployment: str,
    association_id: str,
    model: ModelRef,
    prediction: str | float,
    probabilities: Mapping[str, float] | None = None,
    event_time: Time | None = None,
) -> Message:
    """A Prediction of the deployment's champion, as a JSON prediction on the topic reads."""
    fields = {
        "association_id": association_id,
        "deployment": deployment,
        "model_name": model.name,
        "model_version": model.version,
        "model_id": model.model_id,
        "prediction": prediction,
        "probabilities": probabilities or {},
        "event_time": millis(event_time),
    }
    return encoded("Prediction", fields)
