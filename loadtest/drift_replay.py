"""The drift service's per-deployment code path, in process: no Kafka, no Redis.

``InProcessDrift`` builds the reference the way the service does (a ``ReferenceBook`` fed with
the ModelPublished and Deployment records) and applies each batch exactly as ``DriftLoop._apply``
does: events, then predictions (joined through a ``Joiner``), then actuals, then the windows
that are due, whose reports and breaches are built with the service's ``report`` functions.
The join entries live in a dict instead of Redis; an entry is dropped once its actual and its
prediction have met (the service lets them expire after ``join_ttl_s``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from loadtest.drift_scenarios import Batch
from services.drift.join import ACTUAL, PREDICTION, Joiner
from services.drift.monitor import ClosedWindow, DeploymentMonitor, MonitorConfig
from services.drift.reference import ReferenceBook
from services.drift.report import breach, drift_report


@dataclass(frozen=True)
class Published:
    """What the service would produce for one closed window."""

    window: ClosedWindow
    report: dict[str, Any]
    breaches: list[dict[str, Any]]


class InProcessDrift:
    """One deployment's monitor fed batch by batch, like the service's loop."""

    def __init__(
        self, records: Sequence[Mapping[str, Any]], deployment: str, config: MonitorConfig
    ) -> None:
        book = ReferenceBook()
        for record in records:
            book.apply(record)
        reference = book.get(deployment)
        if reference is None:
            raise ValueError(f"deployment {deployment!r} or its champion is not in the records")
        self.deployment, self.book = deployment, book
        self.monitor = DeploymentMonitor(reference, config)
        self.entries: dict[str, str] = {}  # the join store: entry JSON by key

    def key(self, association_id: str) -> str:
        """The join key of an association id (the service's Redis key layout)."""
        return f"join:{self.deployment}:{association_id}"

    def feed(self, batch: Batch) -> list[Published]:
        """Apply one batch; returns what the windows it closed would publish."""
        pred_keys = [self.key(r["association_id"]) for r in batch.predictions]
        act_keys = [self.key(r["association_id"]) for r in batch.actuals]
        joiner = Joiner(
            {k: self.entries[k] for k in pred_keys + act_keys if k in self.entries},
            self.book.model_id,
        )
        m = self.monitor
        m.add_events(batch.events)
        m.add_predictions(batch.predictions, pred_keys, joiner)
        for key, a in zip(act_keys, batch.actuals, strict=True):
            rows = joiner.actual(key, a["label"], int(a["actual_time"]))
            m.add_joined(rows or [])
        self._store(joiner)
        out = []
        for closed in m.close_due():
            ref, f = closed.reference, closed.figures
            breaches = [breach(ref, f, t, f.end) for t in closed.transitions]
            out.append(Published(closed, drift_report(ref, f), breaches))
        return out

    def _store(self, joiner: Joiner) -> None:
        """Write back as the service does; a fully joined entry is dropped (memory)."""
        for key, value, _new in joiner.writes():
            entry = joiner.entries[key]
            if ACTUAL in entry and any(f.startswith(PREDICTION) for f in entry):
                self.entries.pop(key, None)
            else:
                self.entries[key] = value
