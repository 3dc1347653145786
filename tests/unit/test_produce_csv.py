"""`streamops produce --format csv`: rows become FeatureEvents keyed by their id column. Tried as a
new user would (issue 24's README walk-through), a CSV whose rows are identified by `id` produced
169 "wrong_type: association_id must be a non-empty string" lines and nothing else.

Issue 25 (section 4), a real data set: the label column went out as a feature (200 events
acknowledged, 200 dead-lettered by the scorer), and a row with one extra cell crashed the command
with a TypeError, dropping the rest of the file. Rows are now read with their line numbers, bad
ones skipped and counted, and checked with the scorer's own check where the champion is known."""

from __future__ import annotations

import doctest
import io
import json
from typing import Any

import pytest

from services.cli import csv_rows, produce_cmd
from services.cli.__main__ import main
from services.cli.csv_rows import Champion, ControlState, CsvRows
from services.common import serde
from services.common.errors import ConfigError, Reason
from services.common.topics import TopicNamer

pytestmark = pytest.mark.unit

CSV = "id,mean-radius,plan\ncust-1,14.2,gold\ncust-2,,basic\n"
CHAMPION = Champion(
    "churn",
    "churn",
    3,
    ({"name": "mean-radius", "kind": "numeric", "categories": []},
     {"name": "plan", "kind": "categorical", "categories": ["basic", "gold"]}),
    ("mean-radius", "plan", "churned"),
)  # fmt: skip


def _rows(text: str, *args: Any, **kwargs: Any) -> list:
    return list(CsvRows(io.StringIO(text, newline=""), "churn", "id", *args, **kwargs))


def _events(rows) -> list[dict]:
    return [json.loads(r.value) for r in rows if not r.problem]


def test_the_id_column_names_each_rows_association_id():
    rows = _events(_rows(CSV))
    assert [r["association_id"] for r in rows] == ["cust-1", "cust-2"]
    assert rows[0]["features"] == {"mean-radius": 14.2, "plan": "gold"}
    assert rows[1]["features"] == {"mean-radius": None, "plan": "basic"}
    assert {r["deployment"] for r in rows} == {"churn"}


def test_a_csv_without_its_id_column_is_refused_before_any_row_naming_the_way_out():
    with pytest.raises(ConfigError, match=r"no 'association_id' column \(its columns: id, "):
        CsvRows(io.StringIO(CSV), "churn", "association_id")


def test_the_label_column_is_left_out_of_the_features():
    text = "id,mean-radius,plan,churned\ncust-1,14.2,gold,1\n"
    rows = CsvRows(io.StringIO(text), "churn", "id", label_column="churned")
    assert rows.left_out == ["churned"]
    assert _events(rows)[0]["features"] == {"mean-radius": 14.2, "plan": "gold"}
    with pytest.raises(ConfigError, match=r"no 'label' column"):
        CsvRows(io.StringIO(text), "churn", "id", label_column="label")


def test_with_a_known_champion_its_label_and_columns_it_does_not_take_are_left_out():
    text = "id,notes,mean-radius,plan,churned\ncust-1,called twice,14.2,gold,1\n"
    rows = CsvRows(io.StringIO(text), "churn", "id", champion=CHAMPION)
    assert rows.left_out == ["churned", "notes"]
    assert _events(rows)[0]["features"] == {"mean-radius": 14.2, "plan": "gold"}


def test_a_ragged_row_with_one_extra_cell_is_skipped_with_its_line_and_the_rest_is_sent():
    text = "id,mean-radius,plan\ncust-1,14.2,gold\ncust-2,15.0,gold,EXTRA\ncust-3,9.1,basic\n"
    rows = _rows(text)
    assert [(r.line, r.kind, r.problem) for r in rows if r.problem] == [
        (3, "ragged", "4 cells where the header has 3")
    ]
    assert [e["association_id"] for e in _events(rows)] == ["cust-1", "cust-3"]


def test_a_row_with_one_cell_too_few_is_skipped_not_sent_with_a_feature_missing():
    text = "id,mean-radius,plan\ncust-1,14.2\ncust-2,15.0,gold\n"
    rows = _rows(text)
    assert [(r.line, r.problem) for r in rows if r.problem] == [
        (2, "2 cells where the header has 3")
    ]
    assert [e["association_id"] for e in _events(rows)] == ["cust-2"]


def test_line_numbers_count_quoted_line_breaks_blank_lines_and_unreadable_rows():
    text = (
        "id,mean-radius,plan\n"
        'cust-1,14.2,"gold\nplus"\n'  # lines 2-3
        "\n"  # line 4
        ",1.0,gold\n"  # line 5: no id
        "cust-5," + "9" * 200_000 + ",gold\n"  # line 6: beyond the csv field limit
        "cust-6,1.0,gold\n"
    )
    rows = _rows(text)
    assert [(r.line, r.kind) for r in rows if r.problem] == [(5, "no id"), (6, "unreadable")]
    assert [(r.line, json.loads(r.value)["association_id"]) for r in rows if not r.problem] == [
        (2, "cust-1"),
        (7, "cust-6"),
    ]


def test_a_feature_of_the_champion_absent_from_the_header_is_named_before_any_row():
    with pytest.raises(ConfigError) as caught:
        CsvRows(io.StringIO("id,plan\ncust-1,gold\n"), "churn", "id", champion=CHAMPION)
    assert "no column for 'mean-radius', input of churn's champion churn v3" in str(caught.value)


def test_the_champion_refuses_exactly_what_the_scorer_refuses():
    assert CHAMPION.refusal({"mean-radius": None, "plan": "unseen"}) is None  # missing, unseen
    assert CHAMPION.refusal({"mean-radius": 1.0, "plan": "gold", "other": "x"}) is None
    assert CHAMPION.refusal({"mean-radius": "abc", "plan": "gold"}).reason == Reason.WRONG_TYPE
    assert CHAMPION.refusal({"plan": "gold"}).reason == Reason.SCHEMA_MISMATCH


def test_actuals_carry_each_rows_label_and_rows_without_one_are_counted():
    text = "id,mean-radius,plan,churned\ncust-1,14.2,gold,1\ncust-2,3.0,basic,\n"
    rows = CsvRows(io.StringIO(text), "churn", "id", "churned", actuals=True)
    actuals = [json.loads(r.actual) for r in rows if r.actual]
    assert actuals == [{"association_id": "cust-1", "deployment": "churn", "label": 1.0}]
    assert rows.unlabelled == 1
    with pytest.raises(ConfigError, match="--label-column"):
        CsvRows(io.StringIO(CSV), "churn", "id", actuals=True)


def _model(model_id: str, version: int) -> dict:
    lineage = {"dataset": {"columns": [{"name": n, "type": "x"} for n in ("plan", "churned")]}}
    features = [{"name": "plan", "kind": "categorical", "categories": []}]
    content = {"model_id": model_id, "name": "churn", "version": version}
    return {"content": {**content, "signature_in": {"features": features}, "lineage": lineage}}


def _deployment(revision: int, model_id: str, version: int, **more: Any) -> dict:
    ref = {"model_name": "churn", "model_id": model_id, "version": version}
    return {"name": "churn", "revision": revision, "champion": ref, **more}


def test_the_champion_is_the_newest_deployments_model_and_each_way_it_is_not_is_one_line():
    namer = TopicNamer("p.")
    state = ControlState(namer, "churn")
    assert state.champion() == (
        None,
        "deployment 'churn' not found on p.deployments: sending without the signature check "
        "(the scorer refuses events of a deployment it does not know)",
    )
    state.apply(namer.models, _model("m1", 1))
    state.apply(namer.models, {})  # an undecodable record
    state.apply(namer.deployments, _deployment(2, "m2", 2))
    state.apply(namer.deployments, _deployment(1, "m1", 1))  # older: ignored
    state.apply(namer.deployments, {**_deployment(3, "m1", 1), "name": "other"})
    assert state.champion() == (
        None,
        "churn's champion churn v2 not found on p.models: sending without the signature check",
    )
    state.apply(namer.models, _model("m2", 2))
    champion, line = state.champion()
    assert (champion.version, champion.label_column) == (2, "churned")
    assert line == "checking rows against churn's champion churn v2 (1 features)"
    state.apply(namer.deployments, _deployment(3, "m2", 2, external=True))
    assert state.champion() == (
        None,
        "deployment 'churn' is external: sending without the signature check",
    )


def test_doctests_of_the_csv_rows_module():
    assert doctest.testmod(csv_rows).failed == 0


class _Producer:
    """Acknowledges every message at once; keeps (topic, key, value)."""

    sent: list[tuple[str, Any, bytes]] = []

    def __init__(self, _conf: dict) -> None:
        _Producer.sent = []

    def produce(self, topic, value, key=None, headers=None, on_delivery=None) -> None:
        self.sent.append((topic, key, value))
        on_delivery(None, None)

    def poll(self, _timeout: float) -> int:
        return 0

    def flush(self, _timeout: float) -> int:
        return 0


def test_produce_sends_the_good_rows_then_their_actuals_and_summarizes_the_rest(
    tmp_path, monkeypatch, capsys
):
    monkeypatch.setattr(produce_cmd, "Producer", _Producer)
    monkeypatch.setattr(produce_cmd, "find_champion", lambda *a: (CHAMPION, "checking rows"))
    path = tmp_path / "rows.csv"
    path.write_bytes(
        b"\xef\xbb\xbfid,mean-radius,plan,churned\n"  # a spreadsheet's BOM
        b"cust-1,14.2,gold,1\n"
        b"cust-2,15.0,gold,0,EXTRA\n"  # ragged
        b"cust-3,abc,basic,0\n"  # text in a numeric input: the scorer refuses it
        b"cust-4,,basic,1\n"  # a missing value: scored
        b"cust-5,2.0,\xff,0\n"  # not UTF-8
    )
    args = ["--file", str(path), "--deployment", "churn", "--id-column", "id", "--actuals"]
    code = main(["produce", "--topic", "events", "--format", "csv", *args, "--prefix", "p."])
    out, err = capsys.readouterr()
    assert code == 1
    topics = [(t, k) for t, k, _ in _Producer.sent]
    assert topics == [("p.events", "cust-1"), ("p.events", "cust-4"),
                      ("p.actuals", "cust-1"), ("p.actuals", "cust-4")]  # fmt: skip
    event = serde.decode(_Producer.sent[0][2], expected="FeatureEvent")[1]
    assert event["features"] == {"mean-radius": 14.2, "plan": "gold"}
    assert "left out of the features: churned" in err
    assert "line 3: 5 cells where the header has 4 (skipped)" in err
    assert "line 4: wrong_type: feature 'mean-radius': 'abc' is not a number;" in err
    assert "line 6: wrong_type: feature 'plan' is not valid Unicode" in err
    assert "p.events: acknowledged 2, failed 0, invalid 2, refused 1" in out
    assert "skipped 1 (ragged): line 3" in out and "skipped 1 (refused: wrong_type): line 4" in out
    assert "p.actuals: acknowledged 2, failed 0, invalid 0, refused 0" in out
