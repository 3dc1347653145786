"""Data validation before training: refuse unusable data with a message that names the problem.

Checks, in order: a label column exists and has no missing values; enough rows; every numeric
column holds numbers only; no text column the user did not mark categorical has so many distinct
values that it must be an identifier or free text; no feature is mostly missing; for
classification, at least two classes and none too rare to appear in every cross-validation fold.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Mapping

import numpy as np

from services.common.errors import StreamopsError
from services.trainer.dataset import MAX_CLASSES, Dataset

MIN_ROWS = 50
MAX_MISSING_RATE = 0.5
MIN_CLASS_FRACTION = 0.01
MIN_CLASS_ROWS = 5
# A text column is one-hot encoded; past these many distinct values (or more than half the rows
# distinct) it is an identifier or free text, and encoding it costs rows x values of memory:
# a 34k-row CSV with an id column ran 25 minutes and reached 7.5 GB before this check.
MAX_INFERRED_CATEGORIES = 200
DISTINCT_SHARE = 0.5


class DataValidationError(StreamopsError):
    """The data set cannot be trained on; the message says why and what to fix."""


@dataclasses.dataclass(frozen=True)
class ValidationReport:
    """What validation measured: rows, per-column missing rates and class balance."""

    rows: int
    task: str
    missing_rates: Mapping[str, float]
    class_counts: Mapping[str, int]

    @property
    def class_balance(self) -> dict[str, float]:
        """Fraction of rows per class."""
        total = sum(self.class_counts.values()) or 1
        return {c: n / total for c, n in self.class_counts.items()}


def _missing_rate(values: np.ndarray) -> float:
    if values.size == 0:
        return 0.0
    if values.dtype.kind == "f":
        return float(np.isnan(values).mean())
    return float(np.mean([v is None for v in values]))


def validate_dataset(ds: Dataset) -> ValidationReport:
    """Check that ``ds`` can be trained on; raises DataValidationError naming the problem."""
    if ds.label_name is None or ds.labels is None:
        raise DataValidationError(
            "label missing: the data set has no label column "
            f"(columns: {', '.join(ds.columns) or 'none'}); pass --label COLUMN"
        )
    label_missing = sum(v is None for v in ds.labels)
    if label_missing:
        raise DataValidationError(
            f"label {ds.label_name!r} is missing on {label_missing} of {ds.rows} rows; "
            "drop or fill those rows"
        )
    if ds.rows < MIN_ROWS:
        raise DataValidationError(f"too few rows: {ds.rows} (need at least {MIN_ROWS})")
    if not ds.feature_specs:
        raise DataValidationError("no feature columns besides the label")
    for name, examples in ds.unparseable.items():
        raise DataValidationError(
            f"numeric column {name!r} contains non-numeric values, e.g. "
            f"{', '.join(repr(e) for e in examples)}; clean them or mark the column categorical"
        )
    for spec in ds.feature_specs:
        n = len(spec.categories)
        looks_like_ids = n > MAX_INFERRED_CATEGORIES or (n > 20 and n > DISTINCT_SHARE * ds.rows)
        if spec.kind == "categorical" and looks_like_ids and spec.name not in ds.marked_categorical:
            raise DataValidationError(
                f"column {spec.name!r} has {n:,} distinct text values in {ds.rows:,} rows: it "
                f"looks like an identifier or free text, not a category; drop it with --drop "
                f"{spec.name}, or mark it --categorical {spec.name} to one-hot encode it anyway"
            )
    rates = {s.name: _missing_rate(ds.columns[s.name]) for s in ds.feature_specs}
    for name, rate in rates.items():
        if rate > MAX_MISSING_RATE:
            raise DataValidationError(
                f"feature {name!r} is {rate:.0%} missing (at most {MAX_MISSING_RATE:.0%} allowed)"
            )
    counts: dict[str, int] = {}
    if ds.task == "classification":
        counts = dict(sorted(Counter(str(v) for v in ds.labels).items()))
        if len(counts) < 2:
            raise DataValidationError(
                f"label {ds.label_name!r} has a single class {next(iter(counts))!r}; "
                "a classifier needs at least two"
            )
        if len(counts) > MAX_CLASSES:
            raise DataValidationError(
                f"label {ds.label_name!r} has {len(counts)} distinct non-numeric values; "
                f"classification allows at most {MAX_CLASSES}"
            )
        floor = max(MIN_CLASS_ROWS, MIN_CLASS_FRACTION * ds.rows)
        for cls, n in counts.items():
            if n < floor:
                raise DataValidationError(
                    f"class {cls!r} has only {n} rows ({n / ds.rows:.2%}); every class needs "
                    f"at least {MIN_CLASS_ROWS} rows and {MIN_CLASS_FRACTION:.0%} of the data"
                )
    return ValidationReport(ds.rows, ds.task, rates, counts)
