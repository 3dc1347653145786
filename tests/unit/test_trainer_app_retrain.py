"""The retrain handler: coalescing, unknown deployments, the gate's verdict, what is returned."""

from __future__ import annotations

import time
import types
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from services.common import serde, signing
from services.common.errors import Reason
from services.common.model_verifier import ModelVerifier
from services.common.runner import Inbound, Outbound, Rejected
from services.trainer.dataset import DataVersion, FeatureSpec
from services.trainer.gate import GateVerdict
from services.trainer.metrics import TrainerMetrics
from services.trainer.model_build import BuiltModel, TrainOptions
from services.trainer.model_content import build_model_content
from services.trainer.retrain import RetrainHandler
from services.trainer.validation import DataValidationError
from services.trainer.versions import ModelLedger

pytestmark = pytest.mark.unit

SPECS = (FeatureSpec("x", "numeric"),)


def content(version: int, onnx: bytes, parent: str | None = None) -> dict[str, Any]:
    return build_model_content(
        name="credit",
        version=version,
        parent_id=parent,
        task="classification",
        estimator="hgb",
        onnx=onnx,
        feature_specs=SPECS,
        classes=["0", "1"],
        dataset=DataVersion("stream", "stream:e+a", "h" * 64, 100, (("x", "float"),)),
        params={},
        search_space="{}",
        cv_folds=2,
        split_seed=0,
        holdout_fraction=0.2,
        metrics={"roc_auc": 0.9},
        parity={"rows": 20, "label_agreement": 1.0, "max_prob_diff": 0.0},
        code_version="test",
        baseline={
            "features": [],
            "prediction": {"bin_edges": [], "bin_counts": [], "class_counts": {}},
            "importances": {},
        },
        created_at=1,
    )


class Slices:
    def __init__(self) -> None:
        self.calls: list[tuple[str, int, list[str]]] = []

    def read(self, deployment, last_n, feature_names=None, categorical=(), task=None):
        self.calls.append((deployment, last_n, list(feature_names or [])))
        return types.SimpleNamespace(rows=100)


class Harness:
    def __init__(self, tmp: Path, passed: bool = True, refuse: bool = False) -> None:
        key_id = signing.generate_keypair(tmp)
        self.key = signing.load_private_key(tmp / f"{key_id}.key")
        self.ledger = ModelLedger(ModelVerifier(signing.load_public_keys(tmp)))
        champion = content(1, b"champion-onnx")
        payload = serde.canonical_bytes("ModelContent", champion)
        self.champion_id = champion["model_id"]
        self.ledger.add_model(
            {"content": champion, "key_id": key_id, "signature": self.key.sign(payload)}
        )
        self.ledger.add_deployment(
            {
                "name": "credit-dep",
                "revision": 1,
                "champion": {"model_name": "credit", "model_id": self.champion_id, "version": 1},
            }
        )
        self.slices = Slices()
        self.builds: list[dict[str, Any]] = []
        self.registry = CollectorRegistry()
        self.passed, self.refuse = passed, refuse
        self.handler = RetrainHandler(
            self.ledger,
            self.slices,
            self.key,
            "p.models",
            options=TrainOptions(),
            gate=self.gate,
            default_last_n=500,
            metrics=TrainerMetrics(self.registry),
            build=self.build,
        )

    def gate(self, result: Any, champion: Any) -> GateVerdict:
        assert champion["model_id"] == self.champion_id  # judged against the verified champion
        return GateVerdict(self.passed, "roc_auc", 0.5, 0.9, 0.02, "verdict")

    def build(self, ds: Any, *, name: str, version: int, parent_id: str | None, options: Any):
        self.builds.append({"name": name, "version": version, "parent_id": parent_id})
        if self.refuse:
            raise DataValidationError("too few rows: 3 (need at least 50)")
        new = content(version, f"onnx-{version}".encode(), parent_id)
        new["created_at"] = int(time.time() * 1000)
        result = types.SimpleNamespace(train_seconds=0.1, task="classification", metrics={})
        return BuiltModel(new, None, result, None)  # type: ignore[arg-type]

    def count(self, outcome: str) -> float:
        value = self.registry.get_sample_value(
            "streamops_trainer_trainings_total", {"outcome": outcome}
        )
        return value or 0.0


def request(offset: int, deployment: str = "credit-dep", at: int | None = None, last_n=None):
    record = {
        "request_id": f"r{offset}",
        "deployment": deployment,
        "reason": "drift",
        "requested_by": "alerting",
        "requested_at": at if at is not None else int(time.time() * 1000),
        "breach_ids": [],
        "last_n": last_n,
    }
    return Inbound("p.retrain", 0, offset, b"k", b"v", "RetrainRequest", record, 0)


def test_requests_for_one_deployment_in_a_batch_train_once(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    out = h.handler.handle([request(0), request(1, last_n=42), request(2, last_n=None)])
    assert len(h.builds) == 1 and len(out) == 1
    assert h.slices.calls == [("credit-dep", 500, ["x"])]  # newest request's last_n (none)
    assert h.count("coalesced") == 2 and h.count("published") == 1
    (published,) = out
    assert isinstance(published, Outbound) and published.topic == "p.models"
    _, record = serde.decode(published.value, expected="ModelPublished")
    verified = ModelVerifier(signing.load_public_keys(tmp_path))(record)
    assert verified["version"] == 2 and verified["parent_id"] == h.champion_id


def test_a_request_made_before_the_last_training_finished_is_already_answered(
    tmp_path: Path,
) -> None:
    h = Harness(tmp_path)
    asked = int(time.time() * 1000) - 1
    h.handler.handle([request(0, at=asked)])
    assert h.handler.handle([request(1, at=asked)]) == []
    assert len(h.builds) == 1 and h.count("coalesced") == 1
    time.sleep(0.01)
    h.handler.handle([request(2, last_n=42)])  # asked after: trains again, next version
    assert [b["version"] for b in h.builds] == [2, 3]
    assert h.slices.calls[-1][1] == 42


def test_gate_rejection_publishes_nothing_and_counts(tmp_path: Path) -> None:
    h = Harness(tmp_path, passed=False)
    assert h.handler.handle([request(0)]) == []
    assert h.count("rejected") == 1 and h.count("published") == 0
    assert h.handler.summaries[-1].outcome == "rejected"
    assert "verdict" in h.handler.summaries[-1].note
    assert h.ledger.plan("credit").version == 2  # the rejected candidate took no version


def test_refused_data_publishes_nothing(tmp_path: Path) -> None:
    h = Harness(tmp_path, refuse=True)
    assert h.handler.handle([request(0)]) == []
    assert h.count("refused") == 1


def test_unknown_deployment_is_dead_lettered(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    out = h.handler.handle([request(0, deployment="nope"), request(1)])
    rejected = [o for o in out if isinstance(o, Rejected)]
    assert [r.inbound.offset for r in rejected] == [0]
    assert rejected[0].reason is Reason.UNKNOWN_DEPLOYMENT
    assert len(h.builds) == 1  # the other deployment still trained


def test_an_external_deployment_is_refused_without_training(tmp_path: Path) -> None:
    # Its model runs in the user's service: a model trained here could not replace it.
    h = Harness(tmp_path)
    champion = {"model_name": "credit", "model_id": h.champion_id, "version": 1}
    h.ledger.add_deployment(
        {"name": "credit-dep", "revision": 2, "champion": champion, "external": True}
    )
    assert h.handler.handle([request(0)]) == []
    assert h.builds == [] and h.slices.calls == []
    assert h.count("refused") == 1 and h.count("published") == 0
