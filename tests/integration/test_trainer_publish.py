"""`streamops train` on the real broker: signed versions on the models topic, with lineage."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.cli.__main__ import main
from services.common import serde, signing
from services.common.errors import PoisonMessage, Reason
from services.common.model_verifier import ModelVerifier
from tests.kafka_support import make_topics, produce, read_all
from tests.model_factory import deployment
from tests.signing_support import deployment_bytes

pytestmark = pytest.mark.integration


def models(bootstrap: str, topic: str) -> list[tuple[bytes | None, dict]]:
    return [
        (key, serde.decode(value, expected="ModelPublished")[1])
        for _p, _o, key, value in read_all(bootstrap, topic, idle_s=0.5)
    ]


def test_train_publishes_signed_versions_parented_by_previous_then_champion(
    kafka_bootstrap: str, prefix: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    namer = make_topics(kafka_bootstrap, prefix, ["models", "deployments"])
    keys = tmp_path / "keys"
    assert main(["keys", "init", "--dir", str(keys)]) == 0
    verify = ModelVerifier(signing.load_public_keys(keys))
    train = [
        "train",
        "--dataset",
        "builtin:credit?rows=3000",
        "--model-name",
        "credit",
        "--prefix",
        prefix,
        "--keys-dir",
        str(keys),
    ]
    capsys.readouterr()

    assert main(train) == 0
    out = capsys.readouterr()
    assert "publishing to" in out.err  # progress lines while it works
    ((key, record),) = models(kafka_bootstrap, namer.models)
    v1 = verify(record)
    assert key == b"credit@1"  # one compaction key per version (docs/decisions.md)
    assert out.out.startswith(f"published credit v1  model {v1['model_id']}")
    assert (v1["version"], v1["parent_id"]) == (1, None)
    data = v1["lineage"]["dataset"]
    assert (data["kind"], data["rows"]) == ("builtin", 3000)
    assert v1["lineage"]["metrics"]["roc_auc"] > 0.95
    assert v1["lineage"]["parity"]["label_agreement"] >= 0.999

    assert main([*train, "--estimator", "logreg"]) == 0
    v2 = verify(models(kafka_bootstrap, namer.models)[-1][1])
    assert (v2["version"], v2["parent_id"], v2["estimator"]) == (2, v1["model_id"], "logreg")

    # With a deployment named like the model, the parent is its champion, not the newest.
    produce(
        kafka_bootstrap,
        namer.deployments,
        [("credit", deployment_bytes(deployment(v1, name="credit")))],
    )
    capsys.readouterr()
    assert main([*train, "--seed", "1"]) == 0
    assert "(champion of deployment 'credit')" in capsys.readouterr().out
    v3 = verify(models(kafka_bootstrap, namer.models)[-1][1])
    assert (v3["version"], v3["parent_id"]) == (3, v1["model_id"])


def test_a_tampered_record_fails_verification(
    kafka_bootstrap: str, prefix: str, tmp_path: Path
) -> None:
    namer = make_topics(kafka_bootstrap, prefix, ["models", "deployments"])
    keys = tmp_path / "keys"
    assert main(["keys", "init", "--dir", str(keys)]) == 0
    argv = ["train", "--dataset", "builtin:credit?rows=1000", "--model-name", "m"]
    assert main([*argv, "--estimator", "logreg", "--prefix", prefix, "--keys-dir", str(keys)]) == 0
    ((_, record),) = models(kafka_bootstrap, namer.models)
    verify = ModelVerifier(signing.load_public_keys(keys))
    verify(record)

    onnx = bytearray(record["content"]["onnx"])
    onnx[len(onnx) // 2] ^= 0x01
    tampered = {**record, "content": {**record["content"], "onnx": bytes(onnx)}}
    other = tmp_path / "other"
    signing.generate_keypair(other)
    for bad, trusted in (
        (tampered, keys),
        ({**record, "signature": b""}, keys),
        (record, other),  # signed by a key the verifier does not trust
    ):
        with pytest.raises(PoisonMessage) as exc:
            ModelVerifier(signing.load_public_keys(trusted))(bad)
        assert exc.value.reason is Reason.BAD_SIGNATURE


def test_refused_data_exits_1_and_publishes_nothing(
    kafka_bootstrap: str, prefix: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    namer = make_topics(kafka_bootstrap, prefix, ["models", "deployments"])
    keys = tmp_path / "keys"
    assert main(["keys", "init", "--dir", str(keys)]) == 0
    csv = tmp_path / "one_class.csv"
    csv.write_text("x,label\n" + "".join(f"{i},yes\n" for i in range(100)))
    argv = ["train", "--dataset", str(csv), "--model-name", "m", "--prefix", prefix]
    assert main([*argv, "--keys-dir", str(keys)]) == 1
    assert "single class" in capsys.readouterr().err
    assert models(kafka_bootstrap, namer.models) == []
