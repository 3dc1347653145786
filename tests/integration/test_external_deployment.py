"""External deployments on the real broker (issue 25): `streamops models describe` publishes a
signed model without ONNX, described by its training data, as the next version of its name; a
scorer process given an external deployment of it answers none of its events and dead-letters
none, while it still scores a served deployment's events in the same stream."""

from __future__ import annotations

import json

import pytest

from services.cli.__main__ import main
from services.common import serde, signing
from services.common.model_verifier import ModelVerifier
from tests.describe_support import CATEGORICAL, credit_table
from tests.kafka_support import count, read_all, wait_caught_up
from tests.model_factory import credit_content, deployment
from tests.scorer_support import v1_signed, world

pytestmark = pytest.mark.integration


def _models(w) -> list[dict]:
    verify = ModelVerifier(signing.load_public_keys(w.keys_dir))
    return [
        verify(serde.decode(v, expected="ModelPublished")[1])
        for _p, _o, _k, v in read_all(w.bootstrap, w.namer.models, idle_s=0.5)
    ]


def test_models_describe_publishes_the_next_signed_version_without_onnx(
    kafka_bootstrap, prefix, tmp_path, capsys
):
    w = world(kafka_bootstrap, prefix, tmp_path)
    data = credit_table(tmp_path / "train.csv", prediction="class")
    args = ["models", "describe", "--prefix", prefix, "--keys-dir", str(w.keys_dir),
            "--name", "fraud-ext", "--data", str(data), "--label", "approved",
            "--categorical", ",".join(CATEGORICAL)]  # fmt: skip
    assert main([*args, "--prediction-column", "pred"]) == 0, capsys.readouterr().err
    out = capsys.readouterr()
    assert out.out.startswith("published fraud-ext v1") and "publishing to" in out.err
    assert "described from train.csv" in out.out and "no ONNX" in out.out
    assert main(args) == 0  # described again, from the labels this time: version 2
    assert capsys.readouterr().out.startswith("published fraud-ext v2")

    first, second = _models(w)  # both verify against the key they were signed with
    for content in (first, second):
        assert content["onnx"] == b"" and content["estimator"] == "external"
        assert json.loads(content["lineage"]["search_space"])["origin"] == "described"
    assert (first["version"], second["version"]) == (1, 2)
    assert second["parent_id"] == first["model_id"] != second["model_id"]
    assert first["lineage"]["metrics"]["accuracy"] == pytest.approx(0.9)
    assert second["lineage"]["metrics"] == {}


def test_a_scorer_skips_an_external_deployment_and_scores_a_served_one(
    kafka_bootstrap, prefix, tmp_path, capsys
):
    w = world(kafka_bootstrap, prefix, tmp_path)
    data = credit_table(tmp_path / "train.csv", prediction="probability")
    assert main(["models", "describe", "--prefix", prefix, "--keys-dir", str(w.keys_dir),
                 "--name", "fraud-ext", "--data", str(data), "--prediction-column", "pred",
                 "--categorical", ",".join(CATEGORICAL)]) == 0  # fmt: skip
    capsys.readouterr()
    (described,) = _models(w)
    w.publish(v1_signed(w))
    w.deploy(deployment(credit_content(1), name="credit"))
    w.deploy({**deployment(described, name="fraud"), "external": True})
    served = w.events(40, deployment="credit")
    skipped = w.events(40, deployment="fraud", start=100)

    group = f"{prefix}scorer"
    proc = w.scorer(group=group)
    proc.start()
    try:
        # Every partition is committed to its end, those holding only skipped events included.
        wait_caught_up(w.bootstrap, group, w.namer.events, timeout_s=120)
    finally:
        code, _ = proc.terminate()
    assert code == 0, proc.log_tail()

    rows = [serde.decode(v, expected="Prediction")[1]
            for _p, _o, _k, v in read_all(w.bootstrap, w.namer.predictions)]  # fmt: skip
    assert sorted(r["association_id"] for r in rows) == sorted(served)
    assert {r["deployment"] for r in rows} == {"credit"}
    assert not set(skipped) & {r["association_id"] for r in rows}
    assert count(kafka_bootstrap, w.namer.deadletter) == 0
    assert "deployment fraud r1: external" in proc.log_tail(200)
