"""Join a deployment's events with their actuals by association id and pick the newest N.

Pure: the Kafka reading lives in `stream_slice`. Actuals are a label book (for each association
id, the label at the highest offset); events of the deployment that have a label are candidates.
`select` walks the candidates newest first (a merge over partitions by event time, each
partition from its highest offset down), keeps the first row per association id, and stops at
N. What it keeps is a top-down run of each partition's candidates, so the offset ranges it
reports contain no candidate it left out, and joining exactly those ranges again selects the
same rows: that is what makes the recorded ranges a data version.

>>> join = SliceJoin("credit")
>>> join.add_actual(0, 7, {"association_id": "a", "deployment": "credit", "label": "1"})
>>> join.add_event(0, 3, {"association_id": "a", "deployment": "credit", "event_time": 5,
...                       "features": {"x": 1.0}})
>>> [(row.association_id, row.label) for row in join.select(10)]
[('a', '1')]
"""

from __future__ import annotations

import dataclasses
import heapq
from collections.abc import Mapping, Sequence
from typing import Any

from services.trainer.dataset import Dataset, canonical_hash, from_records

LABEL = "label"


@dataclasses.dataclass(frozen=True)
class JoinedRow:
    """One labelled event: where it was read, its features and its actual label."""

    partition: int
    offset: int
    association_id: str
    event_time: int
    features: Mapping[str, Any]
    label: Any


class SliceJoin:
    """Accumulates actuals and events of one deployment and selects the newest joined rows."""

    def __init__(self, deployment: str) -> None:
        self.deployment = deployment
        self._labels: dict[str, tuple[int, int, Any]] = {}  # aid -> (partition, offset, label)
        self._candidates: dict[int, list[JoinedRow]] = {}
        self._candidate_ids: set[str] = set()
        self.events_read = 0
        self.skipped = 0  # undecodable records

    @property
    def label_count(self) -> int:
        """Association ids of this deployment with a label."""
        return len(self._labels)

    @property
    def matched_ids(self) -> int:
        """Distinct association ids with both an event and a label so far."""
        return len(self._candidate_ids)

    def add_actual(self, partition: int, offset: int, record: Mapping[str, Any]) -> None:
        """Remember an actual's label; for one association id, the highest offset wins."""
        if record.get("deployment") != self.deployment:
            return
        aid = record["association_id"]
        known = self._labels.get(aid)
        if known is None or (partition, offset) > known[:2]:
            self._labels[aid] = (partition, offset, record["label"])

    def add_event(self, partition: int, offset: int, record: Mapping[str, Any]) -> None:
        """Keep the event if it belongs to the deployment and its label is known."""
        self.events_read += 1
        if record.get("deployment") != self.deployment:
            return
        aid = record["association_id"]
        known = self._labels.get(aid)
        if known is None:
            return
        row = JoinedRow(
            partition, offset, aid, int(record["event_time"]), dict(record["features"]), known[2]
        )
        self._candidates.setdefault(partition, []).append(row)
        self._candidate_ids.add(aid)

    def select(self, limit: int | None) -> list[JoinedRow]:
        """The newest ``limit`` rows (all when None), one per association id."""
        runs = {p: sorted(rows, key=lambda r: -r.offset) for p, rows in self._candidates.items()}
        heap = [(-run[0].event_time, p, -run[0].offset, 0) for p, run in runs.items() if run]
        heapq.heapify(heap)
        taken: list[JoinedRow] = []
        seen: set[str] = set()
        while heap and (limit is None or len(taken) < limit):
            _, p, _, i = heapq.heappop(heap)
            row = runs[p][i]
            if row.association_id not in seen:
                seen.add(row.association_id)
                taken.append(row)
            if i + 1 < len(runs[p]):
                nxt = runs[p][i + 1]
                heapq.heappush(heap, (-nxt.event_time, p, -nxt.offset, i + 1))
        return taken


def event_ranges(topic: str, rows: Sequence[JoinedRow]) -> list[dict[str, Any]]:
    """The tightest inclusive offset range per partition that holds the selected rows."""
    bounds: dict[int, tuple[int, int]] = {}
    for row in rows:
        lo, hi = bounds.get(row.partition, (row.offset, row.offset))
        bounds[row.partition] = (min(lo, row.offset), max(hi, row.offset))
    return [
        {"topic": topic, "partition": p, "start_offset": lo, "end_offset": hi}
        for p, (lo, hi) in sorted(bounds.items())
    ]


def joined_dataset(
    rows: Sequence[JoinedRow],
    *,
    deployment: str,
    uri: str,
    slices: Sequence[Mapping[str, Any]],
    feature_names: Sequence[str] | None = None,
    categorical: Sequence[str] = (),
    task: str | None = None,
) -> Dataset:
    """A stream Dataset of the rows, ordered by (event time, association id) and hashed.

    The hash covers the deployment, the feature names and every row's association id,
    features and label, so the same rows give the same hash whatever order they were read in.
    """
    ordered = sorted(rows, key=lambda r: (r.event_time, r.association_id))
    names = (
        list(feature_names)
        if feature_names is not None
        else sorted({k for r in ordered for k in r.features})
    )
    content_hash = canonical_hash(
        {
            "deployment": deployment,
            "features": names,
            "rows": [
                [r.association_id, [r.features.get(n) for n in names], r.label] for r in ordered
            ],
        }
    )
    return from_records(
        [r.features for r in ordered],
        [r.label for r in ordered],
        label_name=LABEL,
        kind="stream",
        uri=uri,
        content_hash=content_hash,
        stream_slices=slices,
        categorical=categorical,
        feature_names=names,
        task=task,  # a retrain keeps its champion's task whatever the slice's labels look like
    )
