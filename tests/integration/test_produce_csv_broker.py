"""`streamops produce --format csv` on the real broker (issue 25, section 4): for a deployment
whose champion is published, the label column and a column the model does not take stay out of
the events, `--actuals` sends the labels to the actuals topic keyed by the same ids, a ragged row
and a row the scorer would refuse are reported by line and absent, a missing value is sent, and
the summary says so. Without a deployment, one line says the rows go unchecked."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from services.cli.__main__ import main
from services.common import serde
from services.trainer.credit import CREDIT_LABEL, credit_rows
from tests.kafka_support import make_topics, read_all
from tests.model_factory import credit_content, deployment
from tests.scorer_support import v1_signed, world

pytestmark = pytest.mark.integration


def _write_csv(path: Path) -> tuple[list[str], dict[str, str]]:
    """Six credit rows: a-4 has one cell too many, a-5 text in `salary`, a-1 no `age`."""
    rows = list(credit_rows(6, seed=11))
    names = list(rows[0][0])
    labels = {f"a-{i}": label for i, (_, label) in enumerate(rows)}
    with path.open("w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["association_id", *names, CREDIT_LABEL, "notes"])
        for i, (features, label) in enumerate(rows):
            cells = [f"a-{i}", *(features[n] for n in names), label, "called twice"]
            if i == 1:
                cells[1 + names.index("age")] = ""
            if i == 4:
                cells.append("EXTRA")
            if i == 5:
                cells[1 + names.index("salary")] = "n/a"
            out.writerow(cells)
    return names, labels


def _decoded(bootstrap: str, topic: str, record: str) -> dict[str, dict]:
    return {
        k.decode(): serde.decode(v, expected=record)[1]
        for _p, _o, k, v in read_all(bootstrap, topic, idle_s=0.5)
    }


def test_csv_rows_reach_the_topic_without_label_or_bad_rows_and_labels_become_actuals(
    kafka_bootstrap, prefix, tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv("STREAMOPS_KAFKA_BOOTSTRAP", kafka_bootstrap)
    w = world(kafka_bootstrap, prefix, tmp_path)
    make_topics(kafka_bootstrap, prefix, ["actuals"])
    w.publish(v1_signed(w))
    w.deploy(deployment(credit_content(1)))
    names, labels = _write_csv(tmp_path / "rows.csv")

    code = main(["produce", "--topic", "events", "--format", "csv", "--file",
                 str(tmp_path / "rows.csv"), "--actuals", "--prefix", prefix])  # fmt: skip
    out, err = capsys.readouterr()

    assert code == 1, err  # rows were skipped
    assert f"checking rows against credit's champion credit v1 ({len(names)} features)" in err
    assert f"left out of the features: {CREDIT_LABEL}, notes" in err
    assert f"line 6: {len(names) + 4} cells where the header has {len(names) + 3}" in err
    assert "line 7: wrong_type: feature 'salary': 'n/a' is not a number" in err
    assert f"{prefix}events: acknowledged 4, failed 0, invalid 1, refused 1" in out
    assert "skipped 1 (ragged): line 6" in out
    assert "skipped 1 (refused: wrong_type): line 7" in out
    assert f"{prefix}actuals: acknowledged 4, failed 0, invalid 0, refused 0" in out

    events = _decoded(kafka_bootstrap, w.namer.events, "FeatureEvent")
    assert sorted(events) == ["a-0", "a-1", "a-2", "a-3"]
    assert all(sorted(e["features"]) == sorted(names) for e in events.values())
    assert events["a-1"]["features"]["age"] is None
    assert {e["deployment"] for e in events.values()} == {"credit"}
    actuals = _decoded(kafka_bootstrap, f"{prefix}actuals", "Actual")
    assert {k: float(a["label"]) for k, a in actuals.items()} == {
        k: float(labels[k]) for k in events
    }


def test_a_deployment_not_found_is_said_in_one_line_and_rows_go_unchecked(
    kafka_bootstrap, prefix, tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv("STREAMOPS_KAFKA_BOOTSTRAP", kafka_bootstrap)
    w = world(kafka_bootstrap, prefix, tmp_path)
    names, _ = _write_csv(tmp_path / "rows.csv")

    code = main(["produce", "--topic", "events", "--format", "csv", "--file",
                 str(tmp_path / "rows.csv"), "--label-column", CREDIT_LABEL,
                 "--deployment", "nope", "--prefix", prefix])  # fmt: skip
    out, err = capsys.readouterr()

    assert code == 1, err  # the ragged row
    found = [line for line in err.splitlines() if "sending without the signature check" in line]
    assert found == [
        f"deployment 'nope' not found on {prefix}deployments: sending without the signature "
        "check (the scorer refuses events of a deployment it does not know)"
    ]
    assert f"left out of the features: {CREDIT_LABEL}\n" in err
    assert f"{prefix}events: acknowledged 5, failed 0, invalid 1, refused 0" in out
    events = _decoded(kafka_bootstrap, w.namer.events, "FeatureEvent")
    assert sorted(events) == ["a-0", "a-1", "a-2", "a-3", "a-5"]
    assert sorted(events["a-0"]["features"]) == sorted([*names, "notes"])
