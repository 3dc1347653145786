"""Seeded drift scenarios on the credit stream, as FeatureEvent, Prediction and Actual dicts.

Every scenario is the builtin credit stream (river's Agrawal generator, function 0, a seed other
than the champion's training seed) scored by the champion, with one change from event index
``drift_start`` on (the same seed gives the same records):

- ``no_drift``: nothing changes;
- ``mean_shift``: ``salary`` moves up by 0.5 of its baseline standard deviation;
- ``variance_doubled``: ``salary``'s deviations from its baseline mean grow by sqrt(2);
- ``new_category``: ``car`` becomes "21", a category training never saw, in 10% of the events
  (a seeded draw per event);
- ``concept_drift``: the labels come from Agrawal function 2 instead of 0; the features (and so
  the champion's predictions) are unchanged.

The champion scores the drifted features, as the scorer would. The actual of event ``i`` arrives
together with event ``i + label_delay`` (so labels of drifted events first arrive with event
``drift_start + label_delay``); actuals still pending when the stream ends are never sent.

>>> Scenario("mean_shift", seed=7, events=100, drift_start=60).labels_arrive
1060
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from loadtest.drift_champion import DEPLOYMENT, Champion
from services.trainer.credit import CREDIT_CATEGORICAL, CREDIT_FEATURES, credit_rows

SCENARIOS = ("no_drift", "mean_shift", "variance_doubled", "new_category", "concept_drift")
SHIFTED_FEATURE = "salary"
MEAN_SHIFT_SD = 0.5
VARIANCE_FACTOR = 2.0
CATEGORICAL_FEATURE = "car"
NEW_CATEGORY = "21"
NEW_CATEGORY_SHARE = 0.10
CONCEPT_FUNCTION = 2
T0 = 1_700_000_000_000
EVENT_SPACING_MS = 10  # event time between consecutive events (100 events/s)


@dataclass(frozen=True)
class Scenario:
    """One scenario run: which change, the stream's seed and length, and when the change starts."""

    name: str
    seed: int
    events: int
    drift_start: int | None = None  # first changed event (None for no_drift)
    label_delay: int = 1000  # events between an event and the arrival of its actual

    def __post_init__(self) -> None:
        if self.name not in SCENARIOS:
            raise ValueError(f"unknown scenario {self.name!r}; expected one of {SCENARIOS}")
        if (self.name == "no_drift") != (self.drift_start is None):
            raise ValueError("drift_start is required for a drift scenario, and only for one")
        if self.drift_start is not None and not 0 <= self.drift_start < self.events:
            raise ValueError(f"drift_start must be in [0, {self.events})")
        if self.label_delay < 0:
            raise ValueError("label_delay must be >= 0")

    @property
    def labels_arrive(self) -> int | None:
        """The event with which the first actual of a drifted event arrives."""
        return None if self.drift_start is None else self.drift_start + self.label_delay


@dataclass(frozen=True)
class CreditColumns:
    """Rows of the credit stream as columns (numbers float, categories str) and labels."""

    features: dict[str, np.ndarray]
    labels: np.ndarray

    @classmethod
    def generate(cls, seed: int, n: int, function: int = 0) -> CreditColumns:
        """The first ``n`` rows of the stream with this seed and labelling function."""
        values: dict[str, list[Any]] = {name: [] for name in CREDIT_FEATURES}
        labels = []
        for x, y in credit_rows(n, seed=seed, function=function):
            for name in CREDIT_FEATURES:
                values[name].append(x[name])
            labels.append(y)
        features = {
            name: np.array(v, dtype=object if name in CREDIT_CATEGORICAL else float)
            for name, v in values.items()
        }
        return cls(features, np.array(labels, dtype=object))

    def head(self, n: int) -> CreditColumns:
        """The first ``n`` rows (copies)."""
        if n > self.labels.size:
            raise ValueError(f"only {self.labels.size} rows, {n} asked for")
        return CreditColumns({k: v[:n].copy() for k, v in self.features.items()}, self.labels[:n])


@dataclass(frozen=True)
class Batch:
    """Records of consecutive events ``first .. first + len(events)``, as the topics carry them."""

    first: int
    events: list[dict[str, Any]]
    predictions: list[dict[str, Any]]
    actuals: list[dict[str, Any]]


def apply_change(
    scenario: Scenario, columns: CreditColumns, baseline: dict[str, Any]
) -> CreditColumns:
    """The scenario's stream: ``columns`` with its change applied from ``drift_start`` on."""
    start = scenario.drift_start
    features = {k: v.copy() for k, v in columns.features.items()}
    labels = columns.labels.copy()
    if start is None:
        return CreditColumns(features, labels)
    by_name = {f["name"]: f for f in baseline["features"]}
    if scenario.name in ("mean_shift", "variance_doubled"):
        x, ref = features[SHIFTED_FEATURE], by_name[SHIFTED_FEATURE]
        if scenario.name == "mean_shift":
            x[start:] += MEAN_SHIFT_SD * ref["std"]
        else:
            x[start:] = ref["mean"] + (x[start:] - ref["mean"]) * np.sqrt(VARIANCE_FACTOR)
    elif scenario.name == "new_category":
        draws = np.random.default_rng([scenario.seed, 1]).random(labels.size)
        chosen = (np.arange(labels.size) >= start) & (draws < NEW_CATEGORY_SHARE)
        features[CATEGORICAL_FEATURE][chosen] = NEW_CATEGORY
    else:  # concept_drift: same inputs (perturbation 0), the other labelling function
        other = CreditColumns.generate(scenario.seed, labels.size, CONCEPT_FUNCTION)
        labels[start:] = other.labels[start:]
    return CreditColumns(features, labels)


class ScenarioStream:
    """A scenario's records, computed once (features, predictions, labels) and cut in batches."""

    def __init__(
        self, scenario: Scenario, champion: Champion, base: CreditColumns | None = None
    ) -> None:
        self.scenario = scenario
        self.champion = champion
        if base is None:
            base = CreditColumns.generate(scenario.seed, scenario.events)
        self.columns = apply_change(
            scenario, base.head(scenario.events), champion.content["baseline"]
        )
        self.p1 = champion.predict(self.columns.features)

    def event_time(self, i: int) -> int:
        """Event time of event ``i`` (ms)."""
        return T0 + i * EVENT_SPACING_MS

    def batches(self, size: int) -> Iterator[Batch]:
        """Batches of ``size`` events with their predictions and the actuals arriving with them."""
        delay = self.scenario.label_delay
        for first in range(0, self.scenario.events, size):
            idx = range(first, min(first + size, self.scenario.events))
            arriving = range(max(first - delay, 0), max(idx.stop - delay, 0))
            yield Batch(
                first,
                [self.event(i) for i in idx],
                [self.prediction(i) for i in idx],
                [self.actual(i, i + delay) for i in arriving],
            )

    def association_id(self, i: int) -> str:
        """The association id of event ``i``."""
        return f"{self.scenario.name}-{self.scenario.seed}-{i}"

    def event(self, i: int) -> dict[str, Any]:
        """The FeatureEvent of event ``i``."""
        cols = self.columns.features
        return {
            "association_id": self.association_id(i),
            "deployment": DEPLOYMENT,
            "event_time": self.event_time(i),
            "features": {name: plain(col[i]) for name, col in cols.items()},
            "attributes": {},
        }

    def prediction(self, i: int) -> dict[str, Any]:
        """The champion's served Prediction of event ``i``."""
        c = self.champion.content
        negative, positive = (str(k) for k in c["classes"])
        p = float(self.p1[i])
        return {
            "association_id": self.association_id(i),
            "deployment": DEPLOYMENT,
            "model_name": c["name"],
            "model_version": c["version"],
            "model_id": c["model_id"],
            "role": "champion",
            "served": True,
            "prediction": positive if p >= 0.5 else negative,
            "probabilities": {negative: 1.0 - p, positive: p},
            "humility": [],
            "overridden": False,
            "event_time": self.event_time(i),
            "scored_time": self.event_time(i) + 1,
            "input_partition": 0,
            "input_offset": i,
        }

    def actual(self, i: int, arrives_with: int) -> dict[str, Any]:
        """The Actual of event ``i``, arriving with event ``arrives_with``."""
        return {
            "association_id": self.association_id(i),
            "deployment": DEPLOYMENT,
            "label": str(self.columns.labels[i]),
            "actual_time": self.event_time(arrives_with),
        }


def plain(value: Any) -> Any:
    """A numpy scalar as the plain Python value Avro and JSON expect."""
    return value.item() if isinstance(value, np.generic) else value
