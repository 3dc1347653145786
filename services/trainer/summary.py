"""The human summary of one training: what was built, from what, how good, how big, where.

>>> s = TrainingSummary(outcome="published", name="credit", version=2, model_id="ab" * 32,
...     parent_id=None, parent_source="none (first version)", estimator="hgb",
...     task="classification", metrics={"f1": 0.91}, parity={"rows": 10,
...     "label_agreement": 1.0, "max_prob_diff": 1e-7}, onnx_bytes=900, dataset={"kind":
...     "builtin", "uri": "builtin:credit", "content_hash": "cd" * 32, "rows": 50,
...     "stream_slices": []}, train_seconds=1.5, total_seconds=2.0)
>>> render_summary(s).splitlines()[0]
'published credit v2  model abababababababababababababababababababababababababababababababab'
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

METRIC_ORDER = ("accuracy", "precision", "recall", "f1", "roc_auc", "log_loss", "rmse", "mae", "r2")


@dataclasses.dataclass(frozen=True)
class TrainingSummary:
    """Everything the summary shows; ``outcome`` is published, rejected or refused."""

    outcome: str
    name: str
    version: int
    model_id: str
    parent_id: str | None
    parent_source: str
    estimator: str
    task: str
    metrics: Mapping[str, float]
    parity: Mapping[str, float]
    onnx_bytes: int
    dataset: Mapping[str, Any]
    train_seconds: float
    total_seconds: float
    record_bytes: int | None = None
    location: str | None = None  # topic[partition]@offset once delivered
    note: str = ""  # the gate's verdict, or why the model was not published


def summarize(
    content: Mapping[str, Any],
    *,
    outcome: str,
    parent_source: str,
    train_seconds: float,
    total_seconds: float,
    record_bytes: int | None = None,
    location: str | None = None,
    note: str = "",
) -> TrainingSummary:
    """A summary of a ModelContent and what happened to it."""
    lineage = content["lineage"]
    return TrainingSummary(
        outcome=outcome,
        name=content["name"],
        version=int(content["version"]),
        model_id=content["model_id"],
        parent_id=content.get("parent_id"),
        parent_source=parent_source,
        estimator=content["estimator"],
        task=content["task"],
        metrics=dict(lineage["metrics"]),
        parity=dict(lineage["parity"]),
        onnx_bytes=len(content["onnx"]),
        dataset=dict(lineage["dataset"]),
        train_seconds=train_seconds,
        total_seconds=total_seconds,
        record_bytes=record_bytes,
        location=location,
        note=note,
    )


def _metrics_line(metrics: Mapping[str, float]) -> str:
    known = [m for m in METRIC_ORDER if m in metrics]
    rest = sorted(m for m in metrics if m not in METRIC_ORDER)
    return "  ".join(f"{m} {metrics[m]:.4f}" for m in known + rest)


def _slices_line(slices: Sequence[Mapping[str, Any]]) -> str:
    return ", ".join(
        f"{s['topic']}[{s['partition']}] {s['start_offset']}..{s['end_offset']}" for s in slices
    )


def render_summary(s: TrainingSummary) -> str:
    """A few aligned lines, first line ``<outcome> <name> v<version>  model <id>``."""
    data = s.dataset
    lines = [
        f"{s.outcome} {s.name} v{s.version}  model {s.model_id}",
        f"  parent     {s.parent_id or '-'} ({s.parent_source})",
        f"  estimator  {s.estimator} ({s.task})",
        f"  data       {data['kind']} {data['uri']}  {data['rows']} rows  "
        f"sha256 {data['content_hash'][:16]}",
    ]
    if data.get("stream_slices"):
        lines.append(f"  slices     {_slices_line(data['stream_slices'])}")
    lines.append(f"  metrics    {_metrics_line(s.metrics) or 'none measured'}")
    if s.onnx_bytes:
        lines.append(
            f"  parity     labels agree {s.parity['label_agreement']:.2%} on "
            f"{int(s.parity['rows'])} holdout rows, max probability gap "
            f"{s.parity['max_prob_diff']:.1e}"
        )
    else:
        lines.append("  parity     none: a described model has no ONNX (your service runs it)")
    size = f"ONNX {s.onnx_bytes:,} bytes" if s.onnx_bytes else "no ONNX"
    if s.record_bytes is not None:
        size += f", record {s.record_bytes:,} bytes"
    lines.append(f"  size       {size}")
    lines.append(f"  time       training {s.train_seconds:.1f} s, total {s.total_seconds:.1f} s")
    if s.location:
        lines.append(f"  record     {s.location}")
    if s.note:
        lines.append(f"  note       {s.note}")
    return "\n".join(lines)
