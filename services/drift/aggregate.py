"""What one window accumulates for one deployment, against one reference, and its figures.

Per feature: every applicable statistic (on the baseline's bins) and the quality counters; the
champion's served predictions as features (class and score); per model, the accuracy of the
rows joined with actuals; per challenger, its paired outcomes with the champion on the same
events (``services.drift.paired``); event, prediction, late and schema-violation counts; the
champion's labels of a class its model does not know; label coverage
(``services.drift.coverage``: the monitor sets it when the window closes) and label delays.
Costly statistics (KS p-values, chi-square) run only in ``figures()``, at window close.
``state()`` / ``from_state`` persist it as JSON-able data.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Self

import numpy as np

from services.drift.accuracy import ModelAccuracy
from services.drift.paired import PairedOutcomes
from services.drift.quality import FeatureQuality
from services.drift.reference import Reference
from services.drift.statistics import PSI, Statistic
from services.drift.statistics.binning import Column
from services.drift.statistics.registry import CATEGORICAL, NUMERIC
from services.drift.weighting import weighted_drift

MAX_DELAYS = 10_000  # label delays kept per window for the median (the first ones)


@dataclass(frozen=True)
class FeatureFigures:
    """Drift and quality of one feature in a closed window."""

    name: str
    psi: float | None
    ks: float | None
    js: float | None
    chi2_p: float | None
    importance: float
    missing_rate: float
    out_of_range_rate: float
    unseen_rate: float
    observations: int = 0  # present values (missing ones excluded)
    psi_bins: int | None = None  # bins psi was computed on (fewer when pooled)
    psi_needs: int = 0  # observations psi needs, when it is None for too few


@dataclass(frozen=True)
class ModelFigures:
    """Accuracy figures of one model on the window's joined rows."""

    model_id: str
    model_version: int
    metrics: dict[str, float]
    paired: PairedOutcomes | None = None  # a challenger's pairs with the champion, if any


@dataclass(frozen=True)
class WindowFigures:
    """Everything a DriftReport says about one window."""

    seq: int
    start: int
    end: int
    event_count: int
    prediction_count: int
    features: list[FeatureFigures]
    weighted_drift: float | None
    prediction_psi: float | None
    metrics: dict[str, float]
    challengers: list[ModelFigures]
    label_coverage: float
    label_delay_ms_p50: float | None
    schema_violations: int
    late_events: int
    change_point: bool
    extra: dict[str, Any] = field(default_factory=dict)
    labels_joined: int = 0  # champion rows joined into ``metrics``
    unknown_labels: int = 0  # of those, labels of a class the champion does not know


def _restored(cls: Any, feature: Mapping[str, Any], stored: Any, **fresh: Any) -> Any:
    """A statistic or counter of a feature: from its ``state()`` when one is stored (not None),
    else empty (``fresh``: the constructor's other arguments)."""
    return cls(feature, **fresh) if stored is None else cls.from_state(feature, stored)


def statistics_for(
    feature: Mapping[str, Any], min_count: int | None, stored: Mapping[str, Any] | None = None
) -> dict[str, Statistic]:
    """Every statistic applicable to a feature baseline, keyed by name: from its ``state()`` in
    ``stored`` where there is one, else empty."""
    classes = NUMERIC if feature.get("kind") == "numeric" else CATEGORICAL
    stored = stored or {}
    return {
        cls.name: _restored(cls, feature, stored.get(cls.name), min_count=min_count)
        for cls in classes
    }


def _rate(value: float | None) -> float:
    return 0.0 if value is None else float(value)


class WindowAggregate:
    """The aggregates of one window of one deployment."""

    def __init__(
        self,
        reference: Reference,
        seq: int,
        start: int,
        end: int,
        min_count: int | None = None,
        stored: Mapping[str, Any] | None = None,
    ) -> None:
        """An empty window, or (``stored``: a ``state()``, see ``from_state``) its statistics
        and quality counters built once, from their stored counts."""
        self.reference = reference
        self.min_count = min_count
        self._open(seq, start, end)
        stats, quality, predictions = (
            (stored or {}).get(part, {}) for part in ("stats", "quality", "predictions")
        )
        self.stats, self.quality, self.prediction_stats = {}, {}, {}
        for f in reference.features:  # a feature the stored state lacks starts empty
            name = str(f["name"])
            self.stats[name] = statistics_for(f, min_count, stats.get(name))
            self.quality[name] = _restored(FeatureQuality, f, quality.get(name))
        for f in reference.predictions:
            name = str(f["name"])
            self.prediction_stats[name] = _restored(
                PSI, f, predictions.get(name), min_count=min_count
            )

    def _open(self, seq: int, start: int, end: int) -> None:
        """Bounds and counters of a window that has seen nothing yet."""
        self.seq, self.start, self.end = seq, start, end
        self.events = self.predictions = self.labelled = self.late = self.violations = 0
        self.unknown_labels = 0
        # Label coverage: the windows whose predictions this window's labels joined, and (set
        # at close) their labelled and predictions counts.
        self.sources: set[int] = set()
        self.covered = (0, 0)
        self.first_time: int | None = None
        self.last_time: int | None = None
        self.change_point = False
        self.delays: list[float] = []
        self.models: dict[str, tuple[int, ModelAccuracy]] = {}
        self.paired: dict[str, PairedOutcomes] = {}  # by challenger id

    def empty(self, seq: int, start: int, end: int) -> Self:
        """A new window on the same reference. Its statistics share what they derived from the
        baseline (bins, KS grids), so opening it costs only its counters, not the ~0.7 ms of
        deriving them again for every feature."""
        w = copy.copy(self)
        w._open(seq, start, end)
        w.stats = {n: {k: s.empty() for k, s in st.items()} for n, st in self.stats.items()}
        w.quality = {n: q.empty() for n, q in self.quality.items()}
        w.prediction_stats = {n: s.empty() for n, s in self.prediction_stats.items()}
        return w

    def add_events(
        self, columns: Mapping[str, Sequence[Any]], times: Sequence[int], violations: int = 0
    ) -> None:
        """Add a batch of events as columns by feature name (None = missing)."""
        n = len(times)
        if not n:
            return
        self.events += n
        self.violations += violations
        t = np.asarray(times, dtype=np.int64)
        lo, hi = int(t.min()), int(t.max())
        self.first_time = lo if self.first_time is None else min(self.first_time, lo)
        self.last_time = hi if self.last_time is None else max(self.last_time, hi)
        for name, stats in self.stats.items():
            values = columns.get(name)
            if values is None or not len(values):
                values = [None] * n
            column = Column(values)  # what each statistic reads of it, computed once
            for stat in stats.values():
                stat.update(column)
            self.quality[name].update(column)

    def add_predictions(self, columns: Mapping[str, Sequence[Any]], count: int) -> None:
        """Add the champion's served predictions as columns (prediction_class/_score)."""
        self.predictions += count
        for name, stat in self.prediction_stats.items():
            stat.update(columns.get(name) or [None] * count)

    def add_joined(
        self,
        model_id: str,
        version: int,
        predictions: Sequence[Any],
        scores: Sequence[float | None],
        truths: Sequence[Any],
    ) -> np.ndarray:
        """Add one model's joined rows; returns their errors (for the change detector)."""
        if model_id not in self.models:
            positive = self.reference.positive
            self.models[model_id] = (version, ModelAccuracy(self.reference.task, positive))
        return self.models[model_id][1].update(predictions, scores, truths)

    def paired_outcomes(self, challenger: str) -> PairedOutcomes:
        """The counts of a challenger's pairs with the champion, to add to."""
        outcomes = self.paired.get(challenger)
        if outcomes is None:
            outcomes = self.paired[challenger] = PairedOutcomes()
        return outcomes

    def add_delays(self, delays: Sequence[float]) -> None:
        """Record champion label delays (ms), up to MAX_DELAYS per window."""
        room = MAX_DELAYS - len(self.delays)
        if room > 0:
            self.delays.extend(float(d) for d in delays[:room])

    def merge(self, other: WindowAggregate) -> None:
        """Add a window another drift process filled for the same deployment, reference and
        window (each process sees its own partitions): counts add, times widen, a change
        point in either is one in both."""
        self.events += other.events
        self.predictions += other.predictions
        self.labelled += other.labelled
        self.late += other.late
        self.violations += other.violations
        self.unknown_labels += other.unknown_labels
        self.sources |= other.sources
        self.covered = (self.covered[0] + other.covered[0], self.covered[1] + other.covered[1])
        times = [t for t in (self.first_time, other.first_time) if t is not None]
        self.first_time = min(times) if times else None
        times = [t for t in (self.last_time, other.last_time) if t is not None]
        self.last_time = max(times) if times else None
        self.change_point = self.change_point or other.change_point
        self.delays += other.delays[: max(0, MAX_DELAYS - len(self.delays))]
        for name, stats in self.stats.items():
            for key, stat in stats.items():
                stat.merge(other.stats[name][key])
            self.quality[name].merge(other.quality[name])
        for name, stat in self.prediction_stats.items():
            stat.merge(other.prediction_stats[name])
        for model_id, (version, acc) in other.models.items():
            if model_id in self.models:
                self.models[model_id][1].merge(acc)
            else:
                self.models[model_id] = (version, ModelAccuracy.from_state(acc.state()))
        for model_id, outcomes in other.paired.items():
            self.paired_outcomes(model_id).merge(outcomes)

    def bin_counts(self) -> dict[str, list[int]]:
        """PSI bin counts per feature: the window's distribution, for audits and tests."""
        return {name: stats["psi"].state()["counts"] for name, stats in self.stats.items()}

    def figures(self) -> WindowFigures:
        """Compute every figure of the window (runs the costly statistics)."""
        ref = self.reference
        features = []
        psi_by_feature: dict[str, float | None] = {}
        for name, stats in self.stats.items():
            q = self.quality[name].get()
            values = {k: s.get() for k, s in stats.items()}
            psi_by_feature[name] = values.get("psi")
            psi = stats.get("psi")
            bins = psi.bins() if isinstance(psi, PSI) else None
            needs = psi.needed() if isinstance(psi, PSI) and bins is None else 0
            features.append(
                FeatureFigures(
                    name=name,
                    psi=values.get("psi"),
                    ks=values.get("ks"),
                    js=values.get("jensen_shannon"),
                    chi2_p=values.get("chi_square"),
                    importance=0.0,
                    missing_rate=_rate(q.missing_rate),
                    out_of_range_rate=_rate(q.out_of_range_rate),
                    unseen_rate=_rate(q.unseen_rate),
                    observations=self.quality[name].count - self.quality[name].missing,
                    psi_bins=bins,
                    psi_needs=needs,
                )
            )
        weighted = weighted_drift(psi_by_feature, ref.importances) if features else None
        if weighted is not None:
            features = [
                FeatureFigures(**{**f.__dict__, "importance": weighted.features[f.name].importance})
                for f in features
            ]
        pred_psi = None
        for name in ("prediction_score", "prediction_class"):
            if name in self.prediction_stats:
                pred_psi = self.prediction_stats[name].get()
                break
        champion = self.models.get(ref.model_id)
        # A challenger can have pairs without joined rows of its own here: its row joined in
        # an earlier window, the champion's prediction came last. Its version is then unknown.
        ids = (set(self.models) | set(self.paired)) - {ref.model_id}
        challengers = []
        for mid in sorted(ids):
            version, acc = self.models.get(mid, (0, None))
            metrics = {} if acc is None else acc.metrics()
            paired = self.paired.get(mid)
            challengers.append(ModelFigures(mid, version, metrics, copy.copy(paired)))
        return WindowFigures(
            seq=self.seq,
            start=self.start,
            end=self.end,
            event_count=self.events,
            prediction_count=self.predictions,
            features=features,
            weighted_drift=None if weighted is None else weighted.score,
            prediction_psi=pred_psi,
            metrics={} if champion is None else champion[1].metrics(),
            challengers=challengers,
            label_coverage=self.covered[0] / self.covered[1] if self.covered[1] else 0.0,
            label_delay_ms_p50=float(np.median(self.delays)) if self.delays else None,
            schema_violations=self.violations,
            late_events=self.late,
            change_point=self.change_point,
            labels_joined=0 if champion is None else champion[1].n,
            unknown_labels=self.unknown_labels,
        )

    def state(self) -> dict[str, Any]:
        """The window as JSON-able data."""
        return {
            "seq": self.seq,
            "start": self.start,
            "end": self.end,
            "min_count": self.min_count,
            "counts": [self.events, self.predictions, self.labelled, self.late, self.violations],
            "times": [self.first_time, self.last_time],
            "change_point": self.change_point,
            "delays": self.delays,
            "labels": {
                "unknown": self.unknown_labels,
                "sources": sorted(self.sources),
                "covered": list(self.covered),
            },
            "stats": {n: {k: s.state() for k, s in st.items()} for n, st in self.stats.items()},
            "quality": {n: q.state() for n, q in self.quality.items()},
            "predictions": {n: s.state() for n, s in self.prediction_stats.items()},
            "models": {m: [v, acc.state()] for m, (v, acc) in self.models.items()},
            "paired": {m: outcomes.state() for m, outcomes in self.paired.items()},
        }

    @classmethod
    def from_state(cls, reference: Reference, state: Mapping[str, Any]) -> Self:
        """Rebuild from the reference it was built on and a ``state()``."""
        w = cls(
            reference,
            int(state["seq"]),
            int(state["start"]),
            int(state["end"]),
            state.get("min_count"),
            stored=state,
        )
        w.events, w.predictions, w.labelled, w.late, w.violations = (
            int(x) for x in state["counts"]
        )
        w.first_time, w.last_time = state["times"]
        w.change_point = bool(state["change_point"])
        labels = state.get("labels") or {}  # absent from states stored before it was added
        w.unknown_labels = int(labels.get("unknown", 0))
        w.sources = {int(x) for x in labels.get("sources", [])}
        covered = labels.get("covered") or [0, 0]
        w.covered = (int(covered[0]), int(covered[1]))
        w.delays = [float(x) for x in state["delays"]]
        w.models = {
            m: (int(v), ModelAccuracy.from_state(acc)) for m, (v, acc) in state["models"].items()
        }
        # Absent from states stored before paired outcomes were counted: none.
        paired = state.get("paired") or {}
        w.paired = {m: PairedOutcomes.from_state(o) for m, o in paired.items()}
        return w
