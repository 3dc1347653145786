"""From a model's training data to an unsigned ModelContent without a model: a *described* model.

An external deployment's model runs in the user's own service, which reports its predictions;
streamops monitors it from what its training data says. The content has empty ``onnx`` and
estimator ``external``; its input signature, classes, task and feature sketches come from the
data as a trained model's would. The rest, and why:

- prediction baseline: the model's outputs on the data when the user gives them (a prediction
  column: predicted classes, or for two classes the probability of the second), else the label
  column. A model that fits its data predicts about its labels' distribution, so drift of the
  live predictions away from the labels is still the signal; the lineage says which was used.
- importances: uniform (1 / features). Without the model nothing can be permuted, and uniform
  weights make importance-weighted drift the plain mean of the features' drift.
- metrics: the prediction column against the label (accuracy, precision, recall, F1; AUC and log
  loss too for probabilities; RMSE, MAE, R2 for regression); none without a prediction column.
- parity: nothing was converted, so nothing compared: 0 rows.

The origin is recorded like an import's: ``params.origin`` is "described from <data sha256>" and
``search_space`` is JSON naming the file and the prediction source.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from services.common.errors import ConfigError
from services.common.onnx_inputs import MISSING_CATEGORY, category_text
from services.trainer.baseline import compute_baseline
from services.trainer.dataset import ColumnChoices, Dataset, from_table, load_dataset
from services.trainer.model_build import code_version
from services.trainer.model_content import EXTERNAL, build_model_content
from services.trainer.table_files import read_table
from services.trainer.training import holdout_metrics
from services.trainer.validation import DataValidationError, ValidationReport, validate_dataset

NO_PARITY = {"rows": 0, "label_agreement": 0.0, "max_prob_diff": 0.0}


@dataclasses.dataclass(frozen=True)
class DescribedModel:
    """The content to sign plus what it was made from, for the summary and tests."""

    content: dict[str, Any]
    report: ValidationReport
    sha256: str  # of the data (the file's bytes)
    origin: str  # "described from <file>"
    predictions_from: str  # "prediction column 'p'" or "label column 'y'"


@dataclasses.dataclass(frozen=True)
class Predictions:
    """A column of the data holding the user's model's prediction for each row."""

    column: str
    values: Sequence[Any]


@dataclasses.dataclass(frozen=True)
class Outputs:
    """The user's model's outputs on the data: labels or values, and binary probabilities."""

    predictions: np.ndarray
    probabilities: np.ndarray | None  # (rows, 2) when the column holds a probability


def load_described(
    spec: str, label: str | None, choices: ColumnChoices, prediction_column: str | None
) -> tuple[Dataset, Predictions | None]:
    """The data set, without the prediction column, and that column's values if one is named."""
    if prediction_column is None:
        return load_dataset(spec, label, choices), None
    if spec.startswith("builtin:"):
        raise ConfigError(f"{spec} has no prediction column; describe a file of yours")
    if prediction_column in (*choices.categorical, label):
        raise ConfigError(f"{prediction_column!r} is the prediction column, not a feature or label")
    path = Path(spec)
    table = read_table(path)
    if prediction_column not in table.header:
        raise ConfigError(
            f"no prediction column {prediction_column!r} in {path} "
            f"(columns: {', '.join(table.header)})"
        )
    drop = (*choices.drop, prediction_column)
    ds = from_table(table, path, label, dataclasses.replace(choices, drop=drop))
    left_out = {**ds.left_out, prediction_column: "the model's predictions (--prediction-column)"}
    values = [r.get(prediction_column) for r in table.records]
    return dataclasses.replace(ds, left_out=left_out), Predictions(prediction_column, values)


def _number(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def read_outputs(predictions: Predictions, ds: Dataset) -> Outputs:
    """The prediction column as the model's outputs; DataValidationError naming what is wrong."""
    raw, column = predictions.values, predictions.column
    if len(raw) != ds.rows:
        raise ValueError(f"{len(raw)} predictions for {ds.rows} rows")
    missing = [i for i, v in enumerate(raw) if category_text(v) is None]
    if missing:
        raise DataValidationError(
            f"prediction column {column!r} is empty on {len(missing)} of {len(raw)} rows "
            f"(first: row {missing[0] + 1}); every row needs the model's prediction"
        )
    if ds.task == "regression":
        values = [_number(v) for v in raw]
        bad = [i for i, v in enumerate(values) if v is None]
        if bad:
            raise DataValidationError(
                f"prediction column {column!r} must hold numbers (a regression); row "
                f"{bad[0] + 1} has {raw[bad[0]]!r} ({len(bad)} such rows)"
            )
        return Outputs(np.array(values, dtype=float), None)
    classes = ds.classes
    texts = np.array([category_text(v) for v in raw], dtype=object)
    if all(t in classes for t in texts):
        return Outputs(texts, None)
    scores = [_number(v) for v in raw]
    if len(classes) == 2 and all(s is not None and 0.0 <= s <= 1.0 for s in scores):
        positive = np.array(scores, dtype=float)
        labels = np.where(positive > 0.5, classes[1], classes[0]).astype(object)
        return Outputs(labels, np.column_stack([1.0 - positive, positive]))
    unknown = sorted({str(t) for t in texts if t not in classes})
    hint = f", or the probability of {classes[1]!r} (0 to 1)" if len(classes) == 2 else ""
    raise DataValidationError(
        f"prediction column {column!r} holds {', '.join(map(repr, unknown[:5]))}, not classes "
        f"of label {ds.label_name!r} ({', '.join(classes)}); give the predicted class{hint}"
    )


def describe_model(
    ds: Dataset,
    *,
    name: str,
    version: int,
    parent_id: str | None,
    predictions: Predictions | None = None,
    created_at: int | None = None,
) -> DescribedModel:
    """Validate the data and describe the model trained on it, from its ``predictions`` on
    the rows when the user has them."""
    report = validate_dataset(ds)
    y = ds.target()
    if predictions is None:
        result, source, metrics = Outputs(y, None), f"label column {ds.label_name!r}", {}
    else:
        result, source = read_outputs(predictions, ds), f"prediction column {predictions.column!r}"
        metrics = holdout_metrics(ds.task, ds.classes, y, result.predictions, result.probabilities)
    specs = ds.feature_specs
    baseline = compute_baseline(
        ds.matrix(),
        specs,
        task=ds.task,
        classes=ds.classes,
        predictions=result.predictions,
        probabilities=result.probabilities,
        importances={s.name: 1.0 / len(specs) for s in specs},
        missing_token=MISSING_CATEGORY,
    )
    data = ds.version
    file = Path(data.uri).name if data.kind == "file" else data.uri
    sha = data.content_hash
    origin = {"origin": "described", "file": file, "sha256": sha, "predictions": source,
              "importances": "uniform"}  # fmt: skip
    content = build_model_content(
        name=name,
        version=version,
        parent_id=parent_id,
        task=ds.task,
        estimator=EXTERNAL,
        onnx=b"",
        feature_specs=specs,
        classes=ds.classes,
        dataset=data,
        params={
            "origin": json.dumps(f"described from {sha}"),
            "prediction_column": json.dumps(predictions.column if predictions else None),
        },
        search_space=json.dumps(origin, sort_keys=True),
        cv_folds=0,
        split_seed=0,
        holdout_fraction=1.0 if metrics else 0.0,
        metrics=metrics,
        parity=NO_PARITY,
        code_version=code_version(),
        baseline=baseline,
        created_at=created_at,
    )
    return DescribedModel(content, report, sha, f"described from {file}", source)
