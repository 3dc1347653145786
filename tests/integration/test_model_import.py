"""`streamops models import` on the real broker (issue 24): a scikit-learn Pipeline from a .skops
file, an ONNX file and an XGBoost model are each published as a signed version, deployed and
served by a scorer process, which answers every reference event exactly as the model does
offline; a .skops file with an untrusted type is refused and nothing is published."""

from __future__ import annotations

import json
import math

import pytest

from services.cli.__main__ import main
from services.common import serde, signing
from services.common.model_verifier import ModelVerifier
from services.trainer.dataset import load_dataset
from services.trainer.onnx_predictor import OnnxPredictor
from tests.byom_support import NUMERIC, write_models
from tests.kafka_support import count, produce, read_all, wait_caught_up
from tests.model_factory import deployment
from tests.scorer_support import world

pytestmark = pytest.mark.integration


def _models(w) -> list[dict]:
    verify = ModelVerifier(signing.load_public_keys(w.keys_dir))
    return [
        verify(serde.decode(v, expected="ModelPublished")[1])
        for _p, _o, _k, v in read_all(w.bootstrap, w.namer.models, idle_s=0.5)
    ]


def _events(w, name: str, frame, columns: list[str]) -> list[str]:
    items, ids = [], []
    for i, row in enumerate(frame[columns].itertuples(index=False)):
        aid = f"{name}-{i}"
        ids.append(aid)
        features = {
            c: (v if isinstance(v, str) else float(v)) for c, v in zip(columns, row, strict=True)
        }
        event = {"association_id": aid, "deployment": name, "event_time": 1_700_000_000_000 + i,
                 "features": features, "attributes": {}}  # fmt: skip
        items.append((aid, serde.encode("FeatureEvent", event)))
    produce(w.bootstrap, w.namer.events, items)
    return ids


def test_imported_models_are_published_served_and_answer_as_offline(
    kafka_bootstrap, prefix, tmp_path, capsys
):
    w = world(kafka_bootstrap, prefix, tmp_path)
    files = write_models(tmp_path / "models")
    base = ["models", "import", "--prefix", prefix, "--keys-dir", str(w.keys_dir)]
    cases = {
        "cancer-skops": (files.skops, files.reference, [*NUMERIC, "grade"]),
        "cancer-onnx": (files.onnx, files.reference_numeric, NUMERIC),
        "cancer-xgb": (files.xgboost, files.reference_numeric, NUMERIC),
    }
    for name, (model, reference, _) in cases.items():
        args = [*base, "--name", name, "--model", str(model), "--reference", str(reference)]
        assert main(args) == 0, capsys.readouterr().err
        out = capsys.readouterr()
        assert out.out.startswith(f"published {name} v1") and "publishing to" in out.err
        assert f"imported from {model.name}" in out.out

    # Untrusted: refused before anything is built, the type named, nothing published.
    published = count(kafka_bootstrap, w.namer.models)
    args = [*base, "--name", "custom", "--model", str(files.untrusted),
            "--reference", str(files.reference_numeric)]  # fmt: skip
    assert main(args) == 1
    err = capsys.readouterr().err
    assert "refused, nothing published" in err and "tests.byom_support.Doubler" in err
    assert count(kafka_bootstrap, w.namer.models) == published == 3

    contents = {m["name"]: m for m in _models(w)}
    assert sorted(contents) == sorted(cases)
    for name, content in contents.items():
        origin = json.loads(content["lineage"]["search_space"])
        assert origin["origin"] == "imported" and origin["file"] == cases[name][0].name
        w.deploy(deployment(content, name=name))
    ids = {name: _events(w, name, files.x_reference, cols) for name, (_, _, cols) in cases.items()}

    group = f"{prefix}scorer"
    proc = w.scorer(group=group)
    proc.start()
    try:
        wait_caught_up(w.bootstrap, group, w.namer.events, timeout_s=120)
    finally:
        code, _ = proc.terminate()
    assert code == 0, proc.log_tail()

    rows = [serde.decode(v, expected="Prediction")[1]
            for _p, _o, _k, v in read_all(w.bootstrap, w.namer.predictions)]  # fmt: skip
    for name, (_, reference, _) in cases.items():
        served = {r["association_id"]: r for r in rows if r["deployment"] == name}
        assert sorted(served) == sorted(ids[name]), f"{name}: not every event answered"
        content = contents[name]
        specs = [load_dataset(str(reference)).feature_specs[i] for i in range(len(cases[name][2]))]
        offline = OnnxPredictor(content["onnx"], specs, "classification", content["classes"])
        ds = load_dataset(str(reference))
        expected = offline.predict(ds.matrix())
        proba = offline.predict_proba(ds.matrix())
        for i, aid in enumerate(ids[name]):
            row = served[aid]
            assert row["prediction"] == expected[i], f"{name} row {i}"
            assert math.isclose(row["probabilities"]["1"], proba[i][1], abs_tol=1e-6)


def test_publish_model_from_python_publishes_the_next_version(kafka_bootstrap, prefix, tmp_path):
    import skops.io as sio
    import streamops

    w = world(kafka_bootstrap, prefix, tmp_path)
    files = write_models(tmp_path / "models")
    pipeline = sio.load(files.skops, trusted=sio.get_untrusted_types(file=files.skops))
    reference = files.x_reference.assign(y=files.y_reference)
    lines: list[str] = []
    summary = streamops.publish_model(
        pipeline,
        reference=reference,
        label="y",
        name="cancer",
        prefix=prefix,
        keys_dir=str(w.keys_dir),
        progress=lines.append,
    )
    assert (summary.name, summary.version, summary.outcome) == ("cancer", 1, "published")
    assert any("publishing to" in line for line in lines)
    (content,) = _models(w)
    assert content["model_id"] == summary.model_id
    assert [f["name"] for f in content["signature_in"]["features"]] == [*NUMERIC, "grade"]
    assert json.loads(content["lineage"]["search_space"])["format"] == "skops"
    assert content["lineage"]["parity"]["label_agreement"] == 1.0
