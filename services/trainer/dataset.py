"""A versioned tabular data set: feature columns, a label, feature kinds and a content hash.

Sources: ``builtin:credit`` (river's Agrawal credit-approval generator, deterministic),
a table file (CSV, JSON lines or Parquet: ``table_files``) or records from a stream slice. pandas is
deliberately not used: numeric columns are float64 arrays with NaN for missing values and
categorical columns are object arrays of strings with None for missing values.

>>> ds = load_dataset("builtin:credit?rows=100&seed=3")
>>> ds.rows, ds.task, ds.classes, ds.version.kind
(100, 'classification', ['0', '1'], 'builtin')
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import numpy as np

from services.common.errors import ConfigError
from services.common.onnx_inputs import MISSING_CATEGORY, category_text
from services.trainer.credit import (
    BUILTIN_CREDIT,
    CREDIT_CATEGORICAL,
    CREDIT_DEFAULTS,
    CREDIT_FEATURES,
    CREDIT_LABEL,
    credit_rows,
)
from services.trainer.table_files import Table, read_table

MAX_CLASSES = 20
TASKS = ("classification", "regression")
# Columns that identify a row rather than describe it: never features unless named in
# --categorical (a model keyed on row ids learns nothing and one-hot encodes every row).
IDENTIFIER_COLUMNS = ("id", "association_id")


@dataclasses.dataclass(frozen=True)
class ColumnChoices:
    """What the user said about a table's columns: task, categorical columns, dropped columns."""

    task: str | None = None  # None: inferred from the label
    categorical: tuple[str, ...] = ()
    drop: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.task is not None and self.task not in TASKS:
            raise ConfigError(f"task must be one of {', '.join(TASKS)}, not {self.task!r}")

    def features(
        self, header: Sequence[str], label: str | None
    ) -> tuple[list[str], dict[str, str]]:
        """The feature columns of a table in header order, and the columns left out with why."""
        named = (*self.categorical, *self.drop)
        unknown = [c for c in named if c not in header]
        if unknown:
            raise ConfigError(
                f"no column {', '.join(map(repr, unknown))} in the data set "
                f"(columns: {', '.join(header)})"
            )
        if label is not None and label in named:
            raise ConfigError(f"{label!r} is the label; it cannot be dropped or a feature")
        names, left_out = [], {}
        for column in header:
            if column == label:
                continue
            if column in self.drop:
                left_out[column] = "dropped (--drop)"
            elif column.lower() in IDENTIFIER_COLUMNS and column not in self.categorical:
                left_out[column] = "an identifier, not a feature (--categorical uses it)"
            else:
                names.append(column)
        return names, left_out


@dataclasses.dataclass(frozen=True)
class FeatureSpec:
    """One model input: its name, kind ("numeric" or "categorical") and training categories."""

    name: str
    kind: str
    categories: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        """The ``signature_in`` entry of a ModelContent."""
        return {"name": self.name, "kind": self.kind, "categories": list(self.categories)}


@dataclasses.dataclass(frozen=True)
class DataVersion:
    """What exactly was trained on: source, content hash, size, schema and stream offsets."""

    kind: str  # "file" | "builtin" | "stream"
    uri: str
    content_hash: str
    rows: int
    columns: tuple[tuple[str, str], ...]
    stream_slices: tuple[Mapping[str, Any], ...] = ()

    def as_dict(self) -> dict[str, Any]:
        """The ``lineage.dataset`` entry of a ModelContent."""
        return {
            "kind": self.kind,
            "uri": self.uri,
            "content_hash": self.content_hash,
            "rows": self.rows,
            "columns": [{"name": n, "type": t} for n, t in self.columns],
            "stream_slices": [dict(s) for s in self.stream_slices],
        }


@dataclasses.dataclass(frozen=True)
class Dataset:
    """Feature columns, label values and the version they were read as."""

    columns: Mapping[str, np.ndarray]
    feature_specs: tuple[FeatureSpec, ...]
    label_name: str | None
    labels: np.ndarray | None  # strings (classification) or floats (regression); None = missing
    task: str  # "classification" | "regression"
    version: DataVersion
    # Numeric columns holding values that are not numbers: column -> a few offending values.
    unparseable: Mapping[str, tuple[str, ...]] = dataclasses.field(default_factory=dict)
    # Columns the user marked categorical: they may have as many categories as they like.
    marked_categorical: tuple[str, ...] = ()
    # Columns of the source that are not features (dropped, identifiers) and why.
    left_out: Mapping[str, str] = dataclasses.field(default_factory=dict)

    @property
    def rows(self) -> int:
        """Number of rows."""
        return self.version.rows

    @property
    def classes(self) -> list[str]:
        """Sorted distinct labels for classification (the order scikit-learn uses), else []."""
        if self.task != "classification" or self.labels is None:
            return []
        return sorted({str(v) for v in self.labels if v is not None})

    def matrix(self, index: np.ndarray | None = None) -> np.ndarray:
        """The features as a 2-D object matrix in spec order, the pipeline's input."""
        cols = []
        for spec in self.feature_specs:
            values = self.columns[spec.name]
            if spec.kind == "categorical":
                values = np.array([MISSING_CATEGORY if v is None else v for v in values], object)
            cols.append(values.astype(object))
        out = np.column_stack(cols) if cols else np.empty((self.rows, 0), dtype=object)
        return out if index is None else out[index]

    def target(self) -> np.ndarray:
        """The label values as the estimator expects them (str or float)."""
        if self.labels is None:
            raise ConfigError("the data set has no label column")
        return self.labels.astype(str if self.task == "classification" else float)


def _as_number(value: Any, parse_text: bool = True) -> float | None:
    """A float for numbers (and numeric text), NaN for missing, None when it is not a number."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return math.nan
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float | np.integer | np.floating):
        number = float(value)
    elif not parse_text:
        return None if str(value) != "" else math.nan
    else:
        text = str(value).strip()
        if text == "":
            return math.nan
        try:
            number = float(text)
        except ValueError:
            return None
        if math.isnan(number):
            return math.nan
    return number if math.isfinite(number) else None


def _feature_column(
    name: str, raw: list[Any], categorical: bool, parse_text: bool
) -> tuple[FeatureSpec, np.ndarray, tuple[str, ...]]:
    numbers = [_as_number(v, parse_text) for v in raw]
    present = [v for v in raw if category_text(v) is not None]
    bad = [str(v) for v, n in zip(raw, numbers, strict=True) if n is None]
    # Mostly numbers means a numeric column with garbage in it; otherwise it is categorical.
    if not categorical and present and len(bad) * 2 < len(present):
        values = np.array([math.nan if n is None else n for n in numbers], dtype=float)
        return FeatureSpec(name, "numeric"), values, tuple(dict.fromkeys(bad))[:5]
    texts = np.array([category_text(v) for v in raw], dtype=object)
    categories = tuple(sorted({t for t in texts if t is not None}))
    return FeatureSpec(name, "categorical", categories), texts, ()


def _label_column(raw: list[Any], task: str | None) -> tuple[np.ndarray, str]:
    """Label values and the task: as asked, else regression for numbers that are not a few
    integers, classification otherwise."""
    present = [v for v in raw if category_text(v) is not None]
    numbers = [_as_number(v) for v in present]
    if task is None and present and all(n is not None for n in numbers):
        integral = all(float(n).is_integer() for n in numbers)
        if not (integral and len(set(numbers)) <= MAX_CLASSES):
            task = "regression"
    if task == "regression":
        values = [_as_number(v) for v in raw]
        bad = [i for i, n in enumerate(values) if n is None]
        if bad:
            raise ConfigError(
                f"regression needs a numeric label; row {bad[0] + 1} has {raw[bad[0]]!r} "
                f"({len(bad)} such rows)"
            )
        labels = np.array([None if math.isnan(v) else v for v in values], dtype=object)
        return labels, "regression"
    return np.array([category_text(v) for v in raw], dtype=object), "classification"


def canonical_hash(payload: Any) -> str:
    """sha256 hex of a value's canonical JSON (sorted keys, no spaces, repr floats)."""
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def from_records(
    records: Sequence[Mapping[str, Any]],
    labels: Sequence[Any] | None,
    *,
    label_name: str | None,
    kind: str,
    uri: str,
    content_hash: str | None = None,
    params: Mapping[str, Any] | None = None,
    stream_slices: Sequence[Mapping[str, Any]] = (),
    categorical: Sequence[str] = (),
    feature_names: Sequence[str] | None = None,
    parse_text: bool = False,
    task: str | None = None,
    left_out: Mapping[str, str] | None = None,
) -> Dataset:
    """Build a Dataset from feature rows and labels; hashes them unless a hash is given.

    A column of mostly numbers is numeric (its other values are recorded as unparseable);
    strings are categories unless ``parse_text`` (CSV, where every cell is text) is set. The
    task is ``task`` when given, else inferred from the labels.
    """
    names = (
        list(feature_names)
        if feature_names is not None
        else list(dict.fromkeys(k for r in records for k in r if k != label_name))
    )
    specs, columns, unparseable = [], {}, {}
    for name in names:
        spec, values, bad = _feature_column(
            name, [r.get(name) for r in records], name in categorical, parse_text
        )
        specs.append(spec)
        columns[name] = values
        if bad:
            unparseable[name] = bad
    label_values, inferred = (None, task or "classification")
    if labels is not None:
        label_values, inferred = _label_column(list(labels), task)
    task = inferred
    schema = [(s.name, "float" if s.kind == "numeric" else "string") for s in specs]
    if label_name is not None and label_values is not None:
        schema.append((label_name, "string" if task == "classification" else "float"))
    if content_hash is None:
        content_hash = canonical_hash(
            {
                "params": dict(params or {}),
                "label": label_name,
                "features": names,
                "rows": [[r.get(n) for n in names] for r in records],
                "labels": list(labels) if labels is not None else None,
            }
        )
    version = DataVersion(
        kind, uri, content_hash, len(records), tuple(schema), tuple(stream_slices)
    )
    return Dataset(
        columns,
        tuple(specs),
        label_name,
        label_values,
        task,
        version,
        unparseable,
        tuple(c for c in categorical if c in columns),
        dict(left_out or {}),
    )


def _builtin_credit(spec: str) -> Dataset:
    _, _, query = spec.partition("?")
    params: dict[str, Any] = dict(CREDIT_DEFAULTS)
    for key, value in parse_qsl(query, strict_parsing=bool(query)):
        if key not in CREDIT_DEFAULTS:
            raise ConfigError(f"{spec}: unknown parameter {key!r} (known: rows, seed, function)")
        try:
            params[key] = int(value)
        except ValueError:
            raise ConfigError(f"{spec}: {key} must be an integer, got {value!r}") from None
    if params["rows"] < 1 or not 0 <= params["function"] <= 9:
        raise ConfigError(f"{spec}: rows must be >= 1 and function in 0..9")
    pairs = list(credit_rows(params["rows"], params["seed"], params["function"]))
    recorded = {
        **params,
        "generator": "river.datasets.synth.Agrawal",
        "perturbation": 0.0,
        "balance_classes": False,
    }
    uri = BUILTIN_CREDIT + "?" + "&".join(f"{k}={params[k]}" for k in sorted(CREDIT_DEFAULTS))
    return from_records(
        [x for x, _ in pairs],
        [y for _, y in pairs],
        label_name=CREDIT_LABEL,
        kind="builtin",
        uri=uri,
        params=recorded,
        categorical=sorted(CREDIT_CATEGORICAL),
        feature_names=CREDIT_FEATURES,
    )


def from_table(table: Table, path: Path, label: str | None, choices: ColumnChoices) -> Dataset:
    """A Dataset from a table read from ``path`` (the label defaults to label, target,
    approved, whichever the table has)."""
    if label is None:
        label = next((c for c in ("label", "target", CREDIT_LABEL) if c in table.header), None)
    names, left_out = choices.features(table.header, label)
    labels = [r.get(label) for r in table.records] if label in table.header else None
    return from_records(
        table.records,
        labels,
        label_name=label,
        kind="file",
        uri=str(path.resolve()),
        content_hash=table.content_hash,
        categorical=choices.categorical,
        feature_names=names,
        parse_text=table.text_cells,
        task=choices.task,
        left_out=left_out,
    )


def load_dataset(
    spec: str, label: str | None = None, choices: ColumnChoices | None = None
) -> Dataset:
    """Load ``builtin:credit[?rows=&seed=&function=]`` or a CSV, JSON lines or Parquet file."""
    choices = choices or ColumnChoices()
    if spec == BUILTIN_CREDIT or spec.startswith(BUILTIN_CREDIT + "?"):
        if label not in (None, CREDIT_LABEL):
            raise ConfigError(f"builtin:credit has label {CREDIT_LABEL!r}, not {label!r}")
        if choices != ColumnChoices():
            raise ConfigError("builtin:credit has fixed columns; --task, --categorical and "
                              "--drop apply to your own files")  # fmt: skip
        return _builtin_credit(spec)
    if spec.startswith("builtin:"):
        raise ConfigError(f"unknown built-in data set {spec!r}; available: {BUILTIN_CREDIT}")
    return from_table(read_table(Path(spec)), Path(spec), label, choices)
