"""The webhook body: Alertmanager's webhook JSON version 4, plus a `streamops` object per alert.

Existing Alertmanager receivers read it unchanged; streamops-aware ones also get the deployment,
model, window, value, threshold and dashboard link. `encode` gives the exact bytes that are
signed and sent, so a retry re-sends (and re-signs) the same body.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Iterable, Mapping
from typing import Any

from services.alerting.alert import Alert
from services.alerting.grouping import Notification

VERSION = "4"
ZERO_TIME = "0001-01-01T00:00:00Z"  # Go's zero time: Alertmanager's endsAt while firing


def rfc3339(epoch_s: float | None) -> str:
    """RFC 3339 UTC with milliseconds; None is Go's zero time, as Alertmanager sends."""
    if epoch_s is None:
        return ZERO_TIME
    moment = datetime.datetime.fromtimestamp(epoch_s, tz=datetime.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _common(maps: Iterable[Mapping[str, str]]) -> dict[str, str]:
    """The name/value pairs every map shares."""
    maps = list(maps)
    if not maps:
        return {}
    first = maps[0]
    return {k: v for k, v in first.items() if all(m.get(k) == v for m in maps[1:])}


def render_alert(alert: Alert) -> dict[str, Any]:
    """One entry of `alerts[]`."""
    return {
        "status": alert.status,
        "labels": dict(alert.labels),
        "annotations": dict(alert.annotations),
        "startsAt": rfc3339(alert.starts_at),
        "endsAt": rfc3339(alert.ends_at),
        "generatorURL": alert.generator_url,
        "fingerprint": alert.fingerprint,
        "streamops": dict(alert.streamops),
    }


def render(
    notification: Notification, *, external_url: str = "", max_alerts: int = 0
) -> dict[str, Any]:
    """The version 4 payload; `max_alerts` > 0 truncates `alerts[]` and counts the rest."""
    alerts = list(notification.alerts)
    shown = alerts[:max_alerts] if max_alerts > 0 else alerts
    return {
        "version": VERSION,
        "groupKey": notification.group_key,
        "truncatedAlerts": len(alerts) - len(shown),
        "status": notification.status,
        "receiver": notification.receiver,
        "groupLabels": dict(notification.group_labels),
        # Computed over every alert, not just those shown, as Alertmanager does.
        "commonLabels": _common(a.labels for a in alerts),
        "commonAnnotations": _common(a.annotations for a in alerts),
        "externalURL": external_url,
        "alerts": [render_alert(a) for a in shown],
    }


def encode(payload: Mapping[str, Any]) -> bytes:
    """The exact bytes to sign and send: compact UTF-8 JSON, NaN refused."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()
