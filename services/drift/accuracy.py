"""Accuracy of one model over one window, from predictions joined with their actuals.

Classification: accuracy over every joined row; for a binary model also precision, recall and
F1 of the positive class and AUC from the positive-class scores (rank-based Mann-Whitney form,
vectorised, ties get average ranks). Regression: RMSE and MAE. AUC needs the scores themselves,
so a window keeps at most ``max_pairs`` (score, label) pairs (the first ones; AUC is then
computed on those) to bound its state.

>>> acc = ModelAccuracy("classification", positive="1")
>>> acc.update(["1", "0", "1"], [0.9, 0.2, 0.4], ["1", "0", "0"]).tolist()
[0.0, 0.0, 1.0]
>>> acc.metrics()["accuracy"], acc.metrics()["auc"]
(0.6666666666666666, 1.0)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Self

import numpy as np
from scipy.stats import rankdata

MAX_PAIRS = 20_000


def auc(scores: np.ndarray, labels: np.ndarray) -> float | None:
    """Area under the ROC curve of 0/1 labels by scores; None without both classes."""
    pos = int(labels.sum())
    neg = int(labels.size - pos)
    if pos == 0 or neg == 0:
        return None
    ranks = rankdata(scores)
    return float((ranks[labels == 1].sum() - pos * (pos + 1) / 2) / (pos * neg))


class ModelAccuracy:
    """Counters (and bounded score pairs) of one model's joined predictions in a window."""

    def __init__(self, task: str, positive: str | None = None, max_pairs: int = MAX_PAIRS) -> None:
        self.task = task
        self.positive = positive
        self.max_pairs = max_pairs
        self.n = 0
        self.correct = 0
        self.tp = self.fp = self.fn = 0
        self.sum_sq = 0.0
        self.sum_abs = 0.0
        self.scores: list[float] = []
        self.labels: list[int] = []

    def update(
        self,
        predictions: Sequence[Any],
        scores: Sequence[float | None],
        truths: Sequence[Any],
    ) -> np.ndarray:
        """Add joined rows; returns each row's error (0/1, or absolute error for regression)."""
        if self.task == "regression":
            p = np.asarray([np.nan if v is None else float(v) for v in predictions])
            t = np.asarray([float(v) for v in truths])
            err = np.abs(p - t)
            ok = ~np.isnan(err)
            self.n += int(ok.sum())
            self.sum_sq += float(np.sum(err[ok] ** 2))
            self.sum_abs += float(np.sum(err[ok]))
            return err[ok]
        p = np.asarray([str(v) for v in predictions], dtype=object)
        t = np.asarray([str(v) for v in truths], dtype=object)
        hit = p == t
        self.n += int(hit.size)
        self.correct += int(hit.sum())
        if self.positive is not None:
            pp, tp = p == self.positive, t == self.positive
            self.tp += int(np.sum(pp & tp))
            self.fp += int(np.sum(pp & ~tp))
            self.fn += int(np.sum(~pp & tp))
            room = self.max_pairs - len(self.scores)
            for s, y in zip(scores, tp.tolist(), strict=True):
                if room <= 0:
                    break
                if s is not None:
                    self.scores.append(float(s))
                    self.labels.append(int(y))
                    room -= 1
        return (~hit).astype(float)

    def merge(self, other: ModelAccuracy) -> None:
        """Add another window's counters and pairs of the same model (pairs up to the cap)."""
        self.n += other.n
        self.correct += other.correct
        self.tp += other.tp
        self.fp += other.fp
        self.fn += other.fn
        self.sum_sq += other.sum_sq
        self.sum_abs += other.sum_abs
        room = max(0, self.max_pairs - len(self.scores))
        self.scores += other.scores[:room]
        self.labels += other.labels[:room]

    def metrics(self) -> dict[str, float]:
        """The window's figures (empty before any joined row)."""
        if self.n == 0:
            return {}
        if self.task == "regression":
            return {"rmse": (self.sum_sq / self.n) ** 0.5, "mae": self.sum_abs / self.n}
        out = {"accuracy": self.correct / self.n}
        if self.positive is not None:
            precision = self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0
            recall = self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0
            denom = precision + recall
            out |= {
                "precision": precision,
                "recall": recall,
                "f1": 2 * precision * recall / denom if denom else 0.0,
            }
            value = auc(np.asarray(self.scores), np.asarray(self.labels))
            if value is not None:
                out["auc"] = value
        return out

    def state(self) -> dict[str, Any]:
        """Counters and pairs (JSON-able)."""
        return {
            "task": self.task,
            "positive": self.positive,
            "max_pairs": self.max_pairs,
            "counts": [self.n, self.correct, self.tp, self.fp, self.fn],
            "sums": [self.sum_sq, self.sum_abs],
            "scores": self.scores,
            "labels": self.labels,
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> Self:
        """Rebuild from a ``state()``."""
        acc = cls(state["task"], state.get("positive"), int(state.get("max_pairs", MAX_PAIRS)))
        acc.n, acc.correct, acc.tp, acc.fp, acc.fn = (int(x) for x in state["counts"])
        acc.sum_sq, acc.sum_abs = (float(x) for x in state["sums"])
        acc.scores = [float(x) for x in state.get("scores", [])]
        acc.labels = [int(x) for x in state.get("labels", [])]
        return acc
