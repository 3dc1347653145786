"""Training tables for described models (external deployments): credit rows with a label and,
optionally, the predictions of a model that runs elsewhere (wrong on every tenth row)."""

from __future__ import annotations

import csv
from pathlib import Path

from services.trainer.credit import CREDIT_FEATURES, CREDIT_LABEL, credit_rows

CATEGORICAL = ("elevel", "car", "zipcode")
WRONG_EVERY = 10  # the outside model misses rows 0, 10, 20, ...


def outside_prediction(label: str, row: int, kind: str) -> str:
    """What the outside model said for a row: its class, or the probability of class "1"."""
    wrong = row % WRONG_EVERY == 0
    positive = (label == "1") != wrong
    if kind == "class":
        return "1" if positive else "0"
    return "0.8" if positive else "0.2"


def credit_table(path: Path, rows: int = 400, seed: int = 3, prediction: str | None = None) -> Path:
    """Write credit rows as CSV (features, `approved`, and a `pred` column of kind `class` or
    `probability` when asked); returns the path."""
    header = [*CREDIT_FEATURES, CREDIT_LABEL] + (["pred"] if prediction else [])
    with path.open("w", newline="") as f:
        out = csv.writer(f)
        out.writerow(header)
        for i, (x, y) in enumerate(credit_rows(rows, seed=seed)):
            extra = [outside_prediction(y, i, prediction)] if prediction else []
            out.writerow([x[c] for c in CREDIT_FEATURES] + [y, *extra])
    return path


def labels(rows: int = 400, seed: int = 3) -> list[str]:
    """The `approved` labels of `credit_table`'s rows."""
    return [y for _x, y in credit_rows(rows, seed=seed)]
