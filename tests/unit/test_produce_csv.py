"""`streamops produce --format csv`: rows become FeatureEvents keyed by their id column. Tried as a
new user would (issue 24's README walk-through), a CSV whose rows are identified by `id` produced
169 "wrong_type: association_id must be a non-empty string" lines and nothing else."""

from __future__ import annotations

import io
import json

import pytest

from services.cli.produce_cmd import _lines
from services.common.errors import ConfigError

pytestmark = pytest.mark.unit

CSV = "id,mean-radius,plan\ncust-1,14.2,gold\ncust-2,,basic\n"


def test_the_id_column_names_each_rows_association_id():
    rows = [json.loads(b) for b in _lines(io.StringIO(CSV), "csv", "churn", "id")]
    assert [r["association_id"] for r in rows] == ["cust-1", "cust-2"]
    assert rows[0]["features"] == {"mean-radius": 14.2, "plan": "gold"}
    assert rows[1]["features"] == {"mean-radius": None, "plan": "basic"}
    assert {r["deployment"] for r in rows} == {"churn"}


def test_a_csv_without_its_id_column_is_refused_before_any_row_naming_the_way_out():
    with pytest.raises(ConfigError, match=r"no 'association_id' column \(its columns: id, "):
        next(_lines(io.StringIO(CSV), "csv", "churn", "association_id"))
