"""One deployment's monitoring: windows, threshold state and the error-stream detector.

Fed per micro-batch with the deployment's events, predictions and joined actuals; hands back
the windows that closed, each with its figures and the threshold transitions they caused. The
reference switches when the champion (or the window size) changes: the open windows close
against the old reference and new ones start. When the deployment's stream goes quiet, the
caller closes what it left open (``close_idle``). ``state()`` is what goes to Redis.

In a group of several drift processes (``MonitorConfig.shards`` > 1) each process sees its own
partitions, so a closed window is only part of the deployment's: it is handed back as a
``PartialWindow`` (``take_partials``), without figures, for ``services.drift.merge`` to add up
with the other processes' parts once every process has closed that window (``mark``).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Self

import numpy as np

from services.common.event_columns import EventColumns
from services.common.prediction_columns import PredictionTuple, as_tuple
from services.drift.aggregate import WindowAggregate, WindowFigures
from services.drift.coverage import CoverageBook
from services.drift.detectors import ErrorStreamDetector
from services.drift.hysteresis import Key, ThresholdEvaluator, Transition
from services.drift.join import Joined, Joiner
from services.drift.paired import pairs
from services.drift.reference import Reference
from services.drift.windows import Window, Windows

# The types decoded feature values have when all are of the right kind (the fast path).
_NUMERIC = frozenset({float, int, type(None)})
_CATEGORICAL = frozenset({str, type(None)})
# A batch's events reach a monitor as blocks read as columns, or as (batch index, record).
EventPart = EventColumns | tuple[int, Mapping[str, Any]]
POOLED = -1  # a window's label source that stands for the coverage book's pooled windows


@dataclass(frozen=True)
class MonitorConfig:
    """Window and detector settings shared by every deployment."""

    window_count: int = 0
    lateness_ms: int = 10_000
    min_count: int | None = None
    detector: str = "ddm"
    shards: int = 1  # drift processes in the group: above 1, windows close as partial windows


@dataclass(frozen=True)
class ClosedWindow:
    """A closed window: its figures, the reference, transitions and bin counts."""

    reference: Reference
    figures: WindowFigures
    transitions: list[Transition]
    bins: dict[str, list[int]]


@dataclass(frozen=True)
class PartialWindow:
    """One process's part of a closed window, for the merge (``services.drift.merge``).

    ``key`` names the window the same way in every process: the window's index since the
    epoch (start / size) for time windows, its sequence number for count windows.
    """

    deployment: str
    model_id: str
    key: int
    state: dict[str, Any]  # WindowAggregate.state()


def label_text(value: Any) -> str:
    """A class label as text; an integral number becomes '1', not '1.0'."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def threshold_values(f: WindowFigures) -> dict[Key, float | None]:
    """The figures thresholds can watch, by (metric, feature)."""
    out: dict[Key, float | None] = {}
    for x in f.features:
        out |= {("psi", x.name): x.psi, ("js", x.name): x.js, ("ks_p", x.name): x.ks}
        out |= {("chi2_p", x.name): x.chi2_p, ("missing_rate", x.name): x.missing_rate}
        out |= {("out_of_range_rate", x.name): x.out_of_range_rate}
        out |= {("unseen_rate", x.name): x.unseen_rate}
    out |= {("weighted_drift", None): f.weighted_drift, ("prediction_psi", None): f.prediction_psi}
    out |= {(k, None): v for k, v in f.metrics.items()}
    out[("schema_violations", None)] = float(f.schema_violations)
    out[("late_events", None)] = float(f.late_events)
    if f.prediction_count or f.labels_joined:
        out[("label_coverage", None)] = f.label_coverage
    if f.labels_joined:  # the detectors read the error stream: without labels, no figure
        out[("change_point", None)] = 1.0 if f.change_point else 0.0
    return out


class DeploymentMonitor:
    """Windows, thresholds and change detection of one deployment."""

    def __init__(self, reference: Reference, config: MonitorConfig, next_seq: int = 0) -> None:
        self.reference = reference
        self.config = config
        self.windows = self._windows(reference, next_seq)
        self.evaluator = ThresholdEvaluator(reference.thresholds)
        kind = config.detector if reference.task == "classification" else "adwin"
        self.detector = ErrorStreamDetector(kind)  # type: ignore[arg-type]
        self.coverage = CoverageBook()  # the champion's recent closed windows, for coverage
        self.partials: list[PartialWindow] = []  # closed, not yet taken (shards > 1)

    def _windows(self, ref: Reference, next_seq: int) -> Windows[WindowAggregate]:
        blank = WindowAggregate(ref, -1, 0, 0, self.config.min_count)  # never filled

        def factory(seq: int, start: int, end: int) -> WindowAggregate:
            return blank.empty(seq, start, end)

        w = Windows(
            ref.window_seconds * 1000, self.config.lateness_ms, factory, self.config.window_count
        )
        w.next_seq = next_seq
        return w

    # -- input ------------------------------------------------------------------------------

    def add_events(self, events: Sequence[Mapping[str, Any]]) -> None:
        """Add a batch of FeatureEvent records (vectorised per feature)."""
        self._add_columns(*self._record_columns(events))

    def add_event_parts(self, parts: Sequence[EventPart]) -> None:
        """Add a batch's events, read partly as columns and partly as (batch index, record).

        They are added in batch order, as ``add_events`` would add the same records.
        """
        blocks = [p for p in parts if isinstance(p, EventColumns)]
        records = [p for p in parts if not isinstance(p, EventColumns)]
        pieces = [(b.rows, *self._columns_of(b)) for b in blocks]
        if records:
            order = np.fromiter((i for i, _ in records), dtype=np.int64, count=len(records))
            pieces.append((order, *self._record_columns([r for _, r in records])))
        if len(pieces) < 2:
            if pieces:
                self._add_columns(*pieces[0][1:])
            return
        order = np.argsort(np.concatenate([p[0] for p in pieces]), kind="stable")
        times = np.concatenate([p[1] for p in pieces])[order]
        columns = {
            name: np.concatenate([p[2][name] for p in pieces])[order] for name in pieces[0][2]
        }
        self._add_columns(times, columns, np.concatenate([p[3] for p in pieces])[order])

    def _record_columns(
        self, events: Sequence[Mapping[str, Any]]
    ) -> tuple[np.ndarray, dict[str, np.ndarray], np.ndarray]:
        """(times, columns by feature, wrong-kind rows) of records."""
        times = np.fromiter((e["event_time"] for e in events), dtype=np.int64, count=len(events))
        rows = [e["features"] for e in events]
        bad = np.zeros(len(events), dtype=bool)
        columns: dict[str, np.ndarray] = {}
        for f in self.reference.features:
            name = str(f["name"])
            col = [r.get(name) for r in rows]
            categorical = f["kind"] == "categorical"
            if not set(map(type, col)) <= (_CATEGORICAL if categorical else _NUMERIC):
                wanted = str if categorical else float
                for i, v in enumerate(col):
                    if v is not None and not isinstance(v, wanted):
                        if wanted is float and isinstance(v, int) and not isinstance(v, bool):
                            continue
                        bad[i] = True  # a value of the wrong kind counts as missing
                        col[i] = None
            columns[name] = np.asarray(col, dtype=object if categorical else float)
        return times, columns, bad

    def _columns_of(
        self, block: EventColumns
    ) -> tuple[np.ndarray, dict[str, np.ndarray], np.ndarray]:
        """(times, columns by feature, wrong-kind rows) of events read as columns."""
        n = block.times.size
        bad = np.zeros(n, dtype=bool)
        columns: dict[str, np.ndarray] = {}
        for f in self.reference.features:
            name = str(f["name"])
            categorical = f["kind"] == "categorical"
            kind, values = block.columns.get(name, ("null", None))
            if kind != ("text" if categorical else "numeric"):
                if kind != "null":
                    bad[:] = True  # a value of the wrong kind counts as missing
                values = np.full(n, None, dtype=object) if categorical else np.full(n, np.nan)
            columns[name] = values
        return block.times, columns, bad

    def _add_columns(
        self, times: np.ndarray, columns: dict[str, np.ndarray], bad: np.ndarray
    ) -> None:
        for win, idx in self.windows.assign_events(times):
            sub = {name: col[idx] for name, col in columns.items()}
            win.aggregate.add_events(sub, times[idx], int(bad[idx].sum()))

    def add_predictions(
        self, rows: Sequence[Mapping[str, Any]], keys: Sequence[Hashable], joiner: Joiner
    ) -> int:
        """Add Prediction records (deduplicated by the join store); returns how many were late."""
        return self.add_prediction_tuples([as_tuple(r) for r in rows], keys, joiner)

    def add_prediction_tuples(
        self, rows: Sequence[PredictionTuple], keys: Sequence[Hashable], joiner: Joiner
    ) -> int:
        """``add_predictions`` of the predictions as ``prediction_columns`` hands them out."""
        ref, late = self.reference, 0
        champion, positive = ref.model_id, ref.positive
        classify = ref.task == "classification"
        window_at, store = self.windows.window_at, joiner.prediction
        if self.windows.count:
            window_at = self._count_slots()
        served: dict[int, tuple[Window[WindowAggregate], list[list[Any]]]] = {}
        joined: list[Joined] = []
        for row, key in zip(rows, keys, strict=True):
            _aid, _deployment, model_id, version, was_served, pred, names, values, event_time = row
            win = None
            if was_served and model_id == champion:
                win = window_at(event_time)
                if win is None:
                    late += 1
            payload = [  # the join entry's layout (services/drift/join.py)
                label_text(pred) if classify and pred is not None else pred,
                values[names.index(positive)] if positive in names else None,
                event_time,
                version,
                was_served,
                None if win is None else win.seq,
            ]
            rows_joined = store(key, model_id, payload)
            if rows_joined is None:
                continue  # the same prediction again (a replayed scorer batch)
            if win is not None:
                served.setdefault(win.seq, (win, []))[1].append(payload)
            if rows_joined:
                joined.extend(rows_joined)
        for win, payloads in served.values():
            columns: dict[str, list[Any]] = {}
            if classify:
                columns["prediction_class"] = [p[0] for p in payloads]
                columns["prediction_score"] = [p[1] for p in payloads]
            else:
                columns["prediction_score"] = [p[0] for p in payloads]
            win.aggregate.add_predictions(columns, len(payloads))
        self.add_joined(joined)
        return late

    def _count_slots(self) -> Callable[[int], Window[WindowAggregate]]:
        """Where a batch's champion predictions go in count windows: the oldest open window
        that has fewer predictions than events it holds room for, else the newest. Predictions
        then pair with the windows of their events whether they reach drift after their events
        (a scorer's) or in the same batch (an external deployment's service reports both at
        once); "the newest window" alone put a whole batch of them into its last window."""
        size = self.windows.count
        taken = {w.seq: w.aggregate.predictions for w in self.windows.open.values()}

        def slot(_time_ms: int) -> Window[WindowAggregate]:
            for w in self.windows.open.values():  # oldest first
                if taken[w.seq] < size:
                    taken[w.seq] += 1
                    return w
            newest = self.windows.newest()
            taken[newest.seq] = taken.get(newest.seq, 0) + 1
            return newest

        return slot

    def add_joined(self, rows: Sequence[Joined]) -> None:
        """Add joined rows to the newest window; the champion's errors feed the detector, and
        its labels count for the coverage of the windows their predictions were counted in.
        The pairs the rows complete (``services.drift.paired``) count there too."""
        if not rows:
            return
        ref = self.reference
        win = self.windows.newest().aggregate
        classify = ref.task == "classification"
        for challenger, ours, theirs, label in pairs(rows, ref.model_id, ref.challengers):
            outcomes = win.paired_outcomes(challenger)
            if classify:  # right or wrong as accuracy counts it
                truth = label_text(label)
                outcomes.add_answers(label_text(ours) == truth, label_text(theirs) == truth)
            else:
                outcomes.add_values(ours, theirs, float(label))
        open_by_seq = {w.seq: w.aggregate for w in self.windows.open.values()}
        by_model: dict[str, list[Joined]] = {}
        for r in rows:
            by_model.setdefault(r.model_id, []).append(r)
        for model_id, group in sorted(by_model.items()):
            if ref.task == "classification":
                truths: list[Any] = [label_text(r.label) for r in group]
            else:
                truths = [float(r.label) for r in group]
            errors = win.add_joined(
                model_id,
                group[0].version,
                [r.prediction for r in group],
                [r.score for r in group],
                truths,
            )
            if model_id != ref.model_id:
                continue
            if ref.task == "classification" and ref.classes:
                classes = frozenset(ref.classes)
                win.unknown_labels += sum(t not in classes for t in truths)
            win.add_delays([r.delay_ms for r in group])
            if self.detector.update_many(errors):
                win.change_point = True
            for r in group:
                if not r.served or r.window is None:
                    continue  # a shadow row, or a prediction that came after its window
                seq = int(r.window)
                if seq in open_by_seq:
                    open_by_seq[seq].labelled += 1
                    win.sources.add(seq)
                elif self.coverage.label(seq):
                    win.sources.add(seq)
                else:  # pooled (or unknown): stands for the pool, keeping ``sources`` small
                    win.sources.add(POOLED)

    # -- output -----------------------------------------------------------------------------

    def close_due(self) -> list[ClosedWindow]:
        """Close the windows that are due and evaluate their thresholds."""
        return self._close(self.windows.due())

    def close_idle(self, now_ms: int, idle_ms: int) -> list[ClosedWindow]:
        """Close what a stream that went quiet left open; the caller has seen nothing of the
        deployment for ``idle_ms``. Count windows close at once, time windows once the wall
        clock (``now_ms``) is past their end, the allowed lateness and ``idle_ms``."""
        return self._close(self.windows.idle(now_ms, idle_ms))

    def _cover(self, windows: list[Window[WindowAggregate]]) -> None:
        """Set the closing windows' label coverage over their sources (``coverage``)."""
        for w in windows:
            self.coverage.closed(w.seq, w.aggregate.predictions, w.aggregate.labelled)
        still_open = {
            w.seq: (w.aggregate.predictions, w.aggregate.labelled)
            for w in self.windows.open.values()
        }
        for w in windows:
            w.aggregate.covered = self.coverage.over(w.aggregate.sources, still_open)
        self.coverage.trim()

    def _close(self, windows: list[Window[WindowAggregate]]) -> list[ClosedWindow]:
        out = []
        self._cover(windows)
        for i, w in enumerate(windows):
            agg = w.aggregate
            if i == 0:
                agg.late += self.windows.take_late()
            if self.config.window_count:
                agg.start = agg.first_time or 0
                agg.end = (agg.last_time or 0) + 1
            if self.config.shards > 1:  # one process's part: figures come after the merge
                ref = agg.reference
                key = w.seq if self.config.window_count else w.start // self.windows.size_ms
                self.partials.append(PartialWindow(ref.deployment, ref.model_id, key, agg.state()))
                continue
            out.append(self.evaluate(agg))
        return out

    def take_partials(self) -> list[PartialWindow]:
        """The partial windows closed since the last call (shards > 1)."""
        taken, self.partials = self.partials, []
        return taken

    def mark(self) -> int:
        """Every window whose key is below this one is closed here, or will never open here
        (the merge waits for each process's mark to pass a window's key)."""
        w = self.windows
        if w.count:
            return min((x.seq for x in w.open.values()), default=w.next_seq)
        mark = w.watermark
        return -(2**62) if mark is None else mark // w.size_ms  # below every key

    def latest(self) -> int | None:
        """The latest event time seen (time windows; None with count windows)."""
        return None if self.windows.count else self.windows.max_time

    def advance(self, event_time: int) -> bool:
        """Move the clock up to an event time another process of the group saw (time windows
        only); True if it moved. ``close_due`` then closes what the group's clock closes."""
        w = self.windows
        if w.count or (w.max_time is not None and w.max_time >= event_time):
            return False
        w.max_time = event_time
        return True

    def evaluate(self, agg: WindowAggregate) -> ClosedWindow:
        """A window's figures and the threshold transitions they cause (windows are evaluated
        in order: hysteresis carries from one to the next)."""
        figures = agg.figures()
        values = threshold_values(figures)
        transitions = self.evaluator.evaluate(values)
        transitions += self.evaluator.continuing(values, transitions)
        return ClosedWindow(agg.reference, figures, transitions, agg.bin_counts())

    def switch(self, reference: Reference) -> list[ClosedWindow]:
        """Adopt a new reference: windows close if the model or window size changed."""
        old = self.reference
        closed: list[ClosedWindow] = []
        if (old.model_id, old.window_seconds) != (reference.model_id, reference.window_seconds):
            closed = self._close(self.windows.close_all())
            self.windows = self._windows(reference, self.windows.next_seq)
            if old.model_id != reference.model_id:
                self.detector = ErrorStreamDetector(self.detector.kind)
                self.coverage = CoverageBook()  # the old champion's windows
        self.evaluator = ThresholdEvaluator.from_state(reference.thresholds, self.evaluator.state())
        self.reference = reference
        return closed

    def state(self) -> dict[str, Any]:
        """Everything to persist (JSON-able)."""
        return {
            "model_id": self.reference.model_id,
            "windows": self.windows.state(WindowAggregate.state),
            "evaluator": self.evaluator.state(),
            "detector": self.detector.state(),
            "coverage": self.coverage.state(),
        }

    @classmethod
    def from_state(
        cls,
        reference_for: Callable[[str], Reference | None],
        config: MonitorConfig,
        state: Mapping[str, Any],
    ) -> Self | None:
        """Rebuild against the reference of the stored model id; None if it is unknown."""
        ref = reference_for(state["model_id"])
        if ref is None:
            return None
        m = cls(ref, config)
        m.windows.restore(state["windows"], lambda s: WindowAggregate.from_state(ref, s))
        m.evaluator = ThresholdEvaluator.from_state(ref.thresholds, state["evaluator"])
        m.detector = ErrorStreamDetector.from_state(state["detector"])
        m.coverage = CoverageBook.from_state(state.get("coverage"))
        return m
