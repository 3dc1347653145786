"""Rendering of the training summary."""

from __future__ import annotations

import pytest

from services.trainer.summary import render_summary, summarize

pytestmark = pytest.mark.unit


def content(slices: list[dict] | None = None) -> dict:
    return {
        "model_id": "f" * 64,
        "name": "credit",
        "version": 7,
        "parent_id": "e" * 64,
        "task": "classification",
        "estimator": "hgb",
        "onnx": b"x" * 12345,
        "lineage": {
            "dataset": {
                "kind": "stream" if slices else "builtin",
                "uri": "builtin:credit?rows=3000",
                "content_hash": "ab12" * 16,
                "rows": 3000,
                "stream_slices": slices or [],
            },
            "metrics": {"roc_auc": 0.98765, "f1": 0.9, "cv_roc_auc": 0.97, "accuracy": 0.95},
            "parity": {"rows": 600, "label_agreement": 1.0, "max_prob_diff": 3.2e-08},
        },
    }


def test_summary_names_version_model_metrics_parity_size_data_and_time() -> None:
    s = summarize(
        content(),
        outcome="published",
        parent_source="champion of deployment 'credit'",
        train_seconds=1.25,
        total_seconds=2.5,
        record_bytes=15000,
        location="streamops.models[0]@4",
    )
    text = render_summary(s)
    lines = text.splitlines()
    assert lines[0] == f"published credit v7  model {'f' * 64}"
    assert f"{'e' * 64} (champion of deployment 'credit')" in text
    assert "accuracy 0.9500  f1 0.9000  roc_auc 0.9877  cv_roc_auc 0.9700" in text
    assert "labels agree 100.00% on 600 holdout rows, max probability gap 3.2e-08" in text
    assert "ONNX 12,345 bytes, record 15,000 bytes" in text
    assert "builtin builtin:credit?rows=3000  3000 rows  sha256 ab12ab12ab12ab12" in text
    assert "training 1.2 s, total 2.5 s" in text
    assert "streamops.models[0]@4" in text
    assert "slices" not in text


def test_stream_summary_lists_offset_ranges_and_the_gate_note() -> None:
    slices = [
        {"topic": "p.events", "partition": 0, "start_offset": 10, "end_offset": 99},
        {"topic": "p.actuals", "partition": 2, "start_offset": 0, "end_offset": 5},
    ]
    s = summarize(
        content(slices),
        outcome="rejected",
        parent_source="champion of deployment 'credit'",
        train_seconds=1.0,
        total_seconds=1.0,
        note="gate: roc_auc 0.5 vs champion 0.9: fails",
    )
    text = render_summary(s)
    assert text.startswith("rejected credit v7")
    assert "p.events[0] 10..99, p.actuals[2] 0..5" in text
    assert "gate: roc_auc 0.5 vs champion 0.9: fails" in text
    assert "record " not in text  # nothing was published
