"""The closed loop, watched: milestones the running system must reach, in time, with evidence.

Each milestone is a question asked of the timeline (what the services wrote), the traffic
generator and the webhook sink; the answer is a one-line detail once it holds. `LoopWatch` asks
them all every tick, prints each as it is reached with its time since the stream started, and
raises `LoopFailed` with the missing milestones when the hard deadline passes or a service dies.
The release itself (shadow, then promote on evidence) is the registry's release controller
acting on the deployment's release policy: the watch only reads its decisions on `governance`.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from services.cli.demo_plan import DemoPlan
from services.cli.demo_stream import DemoStream
from services.cli.demo_supervisor import Supervisor
from services.cli.demo_watch import Timeline
from services.common.errors import StreamopsError

Say = Callable[[str], None]


class LoopFailed(StreamopsError):
    """The loop did not close; the message says which step is missing."""


@dataclasses.dataclass(frozen=True)
class Detection:
    """When an injected drift was detected: the breach, and how long it took."""

    breach: dict[str, Any]
    seen_ms: int
    windows: int  # drift windows closed from the injection to the breaching one (inclusive)
    events: int  # events produced from the injection to the end of the breaching window
    seconds: float  # injection to the breach arriving on the breaches topic


class LoopWatch:
    """Asks the milestones and remembers when each was reached."""

    def __init__(
        self,
        plan: DemoPlan,
        timeline: Timeline,
        stream: DemoStream,
        supervisor: Supervisor,
        say: Say,
    ) -> None:
        self.plan, self.timeline, self.stream = plan, timeline, stream
        self.supervisor, self.say = supervisor, say
        self.reached: dict[str, tuple[float, str]] = {}
        self.started = time.monotonic()
        self.v1: dict[str, Any] | None = None
        self.v2: dict[str, Any] | None = None
        self.milestones: list[tuple[str, str, Callable[[], str | None]]] = [
            ("data_drift_injected", "data drift injected", self._data_injected),
            ("data_drift_detected", "data drift detected", self._data_detected),
            ("webhook", "signed webhook received by the sink", self._webhook),
            ("concept_drift_injected", "concept drift injected", self._concept_injected),
            ("concept_drift_detected", "concept drift detected", self._concept_detected),
            ("retrain_requested", "retrain requested", self._retrain),
            ("v2_published", "v2 trained on the stream slice and published", self._published),
            ("shadow", "v2 scoring in shadow as a challenger", self._shadow),
            ("promoted", "v2 promoted by the release policy on evidence", self._promoted),
            ("swapped", "scorer hot-swapped to v2", self._swapped),
            ("after_swap", "accuracy measured after the swap", self._after_swap),
        ]

    # -- facts -------------------------------------------------------------------------------

    def elapsed(self) -> float:
        """Seconds since the stream started."""
        return time.monotonic() - self.started

    def reports(self, model_id: str | None = None) -> list[dict[str, Any]]:
        """Drift reports in window order, optionally only those against one champion."""
        rows = [s.record for s in self.timeline.get("drift")]
        rows = [r for r in rows if model_id is None or r["model_id"] == model_id]
        return sorted(rows, key=lambda r: (r["window_end"], r["window_start"]))

    def webhooks(self) -> list[dict[str, Any]]:
        """Webhooks the sink accepted (its JSON lines)."""
        path: Path = self.plan.sink_out
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

    def detection(self, kind: str, index: int) -> Detection | None:
        """The first firing breach of `kind` for a window ending after event `index`."""
        at = self.stream.injected_at_ms(index)
        if at is None:
            return None
        for seen in self.timeline.get("breaches"):
            b = seen.record
            if b["kind"] == kind and b["status"] == "firing" and b["window_end"] > at:
                windows = [
                    r
                    for r in self.reports(b["model_id"])
                    if at < r["window_end"] <= b["window_end"]
                ]
                events = self.stream.events_until(b["window_end"]) - index
                return Detection(b, seen.at_ms, len(windows), events, (seen.at_ms - at) / 1000)
        return None

    def false_alarms(self, kind: str, index: int) -> list[dict[str, Any]]:
        """Firing breaches of `kind` for windows that ended before event `index` was sent."""
        at = self.stream.injected_at_ms(index) or 2**62
        return [
            s.record
            for s in self.timeline.get("breaches")
            if s.record["kind"] == kind
            and s.record["status"] == "firing"
            and s.record["window_end"] <= at
        ]

    def decisions(self) -> list[tuple[dict[str, Any], dict[str, Any]]]:
        """The release controller's requests, oldest first: (event, evidence)."""
        out = []
        for seen in self.timeline.get("governance"):
            event = seen.record
            if event["action"] == "request" and event["actor"] == "release-controller":
                out.append((event, json.loads(event["payload"]).get("evidence") or {}))
        return out

    def deployment(self) -> dict[str, Any] | None:
        """The newest Deployment record of the demo deployment."""
        records = [s.record for s in self.timeline.get("deployments")]
        return max(records, key=lambda r: r["revision"]) if records else None

    # -- milestones --------------------------------------------------------------------------

    def _injected(self, index: int, what: str) -> str | None:
        if self.stream.injected_at_ms(index) is None:
            return None
        return f"at event {index:,} ({what})"

    def _data_injected(self) -> str | None:
        return self._injected(self.plan.data_drift_at, "loan +100,000 from here on")

    def _concept_injected(self) -> str | None:
        return self._injected(self.plan.concept_drift_at, "labels from Agrawal function 2")

    def _detected(self, kind: str, index: int) -> str | None:
        d = self.detection(kind, index)
        if d is None:
            return None
        b = d.breach
        what = f"{b['metric']}" + (f"[{b['feature']}]" if b["feature"] else "")
        return (
            f"{b['severity']} {what} = {b['value']:.3f} (threshold {b['threshold']}) after "
            f"{d.windows} window(s), {d.events:,} events, {d.seconds:.1f} s"
        )

    def _data_detected(self) -> str | None:
        return self._detected("data_drift", self.plan.data_drift_at)

    def _concept_detected(self) -> str | None:
        return self._detected("accuracy", self.plan.concept_drift_at)

    def _webhook(self) -> str | None:
        for hook in self.webhooks():
            alerts = hook["payload"].get("alerts", [])
            firing = [a for a in alerts if a.get("status") == "firing"]
            if firing:
                names = sorted({a.get("labels", {}).get("alertname", "?") for a in firing})
                return f"webhook {hook['webhook_id']}: {len(firing)} firing ({', '.join(names)})"
        return None

    def _retrain(self) -> str | None:
        requests = self.timeline.get("retrain")
        if not requests:
            return None
        r = requests[0].record
        return f"by {r['requested_by']}: {r['reason']}"

    def _published(self) -> str | None:
        models = [s.record["content"] for s in self.timeline.get("models")]
        if self.v1 is None:
            return None
        newer = [m for m in models if m["version"] > self.v1["version"]]
        if not newer:
            return None
        self.v2 = newer[0]
        data = self.v2["lineage"]["dataset"]
        return (
            f"v{self.v2['version']} parent {str(self.v2['parent_id'])[:12]} "
            f"({'v1' if self.v2['parent_id'] == self.v1['model_id'] else 'NOT v1'}), "
            f"{data['kind']} slice of {data['rows']:,} rows"
        )

    def _shadow(self) -> str | None:
        dep = self.deployment()
        if self.v2 is None or dep is None:
            return None
        if any(c["model"]["model_id"] == self.v2["model_id"] for c in dep["challengers"]):
            rows = sum(
                n for (v, role, _), n in self.timeline.prediction_counts().items()
                if v == self.v2["version"] and role == "challenger"
            )  # fmt: skip
            if rows:
                return f"deployment revision {dep['revision']} ({dep['updated_by']}), {rows} rows"
        return None

    def _promoted(self) -> str | None:
        if self.v1 is None or self.v2 is None or "shadow" not in self.reached:
            return None
        for event, evidence in self.decisions():
            if evidence.get("decision") == "retire":
                raise LoopFailed(f"the release policy retired v2: {event['reason']}")
        dep = self.deployment()
        if dep is None or dep["champion"]["model_id"] != self.v2["model_id"]:
            return None
        return f"revision {dep['revision']} by {dep['updated_by']}: {dep['reason']}"

    def _swapped(self) -> str | None:
        if self.v2 is None:
            return None
        n = self.timeline.prediction_counts().get((self.v2["version"], "champion", True), 0)
        return f"{n} served predictions from v{self.v2['version']}" if n else None

    def _after_swap(self) -> str | None:
        if self.v2 is None or "swapped" not in self.reached:
            return None
        measured = [r for r in self.reports(self.v2["model_id"]) if "accuracy" in r["metrics"]]
        if len(measured) < self.plan.after_swap_windows:
            return None
        acc = [r["metrics"]["accuracy"] for r in measured]
        return f"{len(acc)} window(s), accuracy {sum(acc) / len(acc):.3f}"

    # -- the loop ----------------------------------------------------------------------------

    def tick(self) -> bool:
        """Ask every milestone not yet reached; True when all are."""
        self.supervisor.check()
        if self.stream.errors:
            raise LoopFailed(f"producing traffic failed: {self.stream.errors[0]}")
        if self.v1 is None:
            models = [s.record["content"] for s in self.timeline.get("models")]
            self.v1 = min(models, key=lambda m: m["version"]) if models else None
        for key, label, check in self.milestones:
            if key in self.reached:
                continue
            detail = check()
            if detail is not None:
                self.reached[key] = (self.elapsed(), detail)
                self.say(f"✓ {label}: {detail}")
        return len(self.reached) == len(self.milestones)

    def progress(self) -> str:
        """One status line."""
        counts = self.timeline.prediction_counts()
        by_version: dict[str, int] = {}
        for (version, role, _served), n in sorted(counts.items()):
            tag = f"v{version}" + ("" if role == "champion" else f" {role}")
            by_version[tag] = by_version.get(tag, 0) + n
        preds = ", ".join(f"{k} {n:,}" for k, n in by_version.items()) or "none yet"
        return (
            f"events {self.stream.sent:,} · predictions {preds} · drift windows "
            f"{len(self.timeline.get('drift'))} · breaches {len(self.timeline.get('breaches'))}"
            f" · webhooks {len(self.webhooks())}"
        )

    def run(self, deadline: float, progress_every_s: float = 5.0) -> None:
        """Tick until every milestone is reached; LoopFailed at `deadline` (monotonic)."""
        last = 0.0
        while not self.tick():
            now = time.monotonic()
            if now > deadline:
                missing = [label for key, label, _ in self.milestones if key not in self.reached]
                raise LoopFailed(
                    "hard timeout: the loop did not close; still waiting for: " + "; ".join(missing)
                )
            if now - last >= progress_every_s:
                last = now
                self.say(self.progress())
            time.sleep(0.5)
