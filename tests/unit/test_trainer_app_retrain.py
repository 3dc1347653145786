"""The retrain handler: coalescing, unknown deployments, the gate's verdict, retries of transient
failures, and the model and RetrainOutcome it returns."""

from __future__ import annotations

import doctest
import time
import types
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException
from prometheus_client import CollectorRegistry

from services.common import serde, signing
from services.common.errors import FatalError, Reason, RetryableError
from services.common.model_verifier import ModelVerifier
from services.common.runner import Inbound, Outbound, Rejected
from services.trainer import retrain_outcome
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
    """Raises the queued errors one per read (``always``: on every read), then reads."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int, list[str]]] = []
        self.errors: list[Exception] = []
        self.always: Exception | None = None

    def read(self, deployment, last_n, feature_names=None, categorical=(), task=None):
        self.calls.append((deployment, last_n, list(feature_names or [])))
        if self.always is not None:
            raise self.always
        if self.errors:
            raise self.errors.pop(0)
        return types.SimpleNamespace(rows=100)


class Harness:
    def __init__(
        self,
        tmp: Path,
        passed: bool = True,
        refuse: bool = False,
        fail: Exception | None = None,
        transient: tuple[type[Exception], ...] = (RetryableError,),
    ) -> None:
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
        self.passed, self.refuse, self.fail = passed, refuse, fail
        self.sleeps: list[float] = []
        self.handler = RetrainHandler(
            self.ledger,
            self.slices,
            self.key,
            "p.models",
            outcomes_topic="p.retrain_outcomes",
            options=TrainOptions(),
            gate=self.gate,
            default_last_n=500,
            metrics=TrainerMetrics(self.registry),
            attempts=3,
            backoff_s=2.0,
            transient=transient,
            sleep=self.sleeps.append,
            build=self.build,
        )

    def gate(self, result: Any, champion: Any) -> GateVerdict:
        assert champion["model_id"] == self.champion_id  # judged against the verified champion
        return GateVerdict(self.passed, "roc_auc", 0.5, 0.9, 0.02, "verdict")

    def build(self, ds: Any, *, name: str, version: int, parent_id: str | None, options: Any):
        self.builds.append({"name": name, "version": version, "parent_id": parent_id})
        if self.refuse:
            raise DataValidationError("too few rows: 3 (need at least 50)")
        if self.fail is not None:
            raise self.fail
        new = content(version, f"onnx-{version}".encode(), parent_id)
        new["created_at"] = int(time.time() * 1000)
        result = types.SimpleNamespace(train_seconds=0.1, task="classification", metrics={})
        return BuiltModel(new, None, result, None)  # type: ignore[arg-type]

    def count(self, outcome: str) -> float:
        value = self.registry.get_sample_value(
            "streamops_trainer_trainings_total", {"outcome": outcome}
        )
        return value or 0.0

    def retries(self) -> float:
        value = self.registry.get_sample_value("streamops_trainer_retrain_retries_total")
        return value or 0.0


def outcomes(out: list[Outbound | Rejected]) -> list[dict[str, Any]]:
    """The RetrainOutcome records among what the handler returned, decoded."""
    found = []
    for item in out:
        if isinstance(item, Outbound) and item.topic == "p.retrain_outcomes":
            assert item.key == "credit-dep"  # keyed by deployment, like the requests
            found.append(serde.decode(item.value, expected="RetrainOutcome")[1])
    return found


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
    assert len(h.builds) == 1 and len(out) == 2  # one model, one outcome
    assert h.slices.calls == [("credit-dep", 500, ["x"])]  # newest request's last_n (none)
    assert h.count("coalesced") == 2 and h.count("published") == 1
    published, _outcome = out
    assert isinstance(published, Outbound) and published.topic == "p.models"
    _, record = serde.decode(published.value, expected="ModelPublished")
    verified = ModelVerifier(signing.load_public_keys(tmp_path))(record)
    assert verified["version"] == 2 and verified["parent_id"] == h.champion_id
    (answer,) = outcomes(out)  # the coalesced requests need none: the newest one is answered
    assert answer["request_id"] == "r2"


def test_a_request_made_before_the_last_training_finished_is_already_answered(
    tmp_path: Path,
) -> None:
    h = Harness(tmp_path)
    asked = int(time.time() * 1000) - 1
    h.handler.handle([request(0, at=asked)])
    (again,) = outcomes(h.handler.handle([request(1, at=asked)]))  # answered by v2, untrained
    assert (again["request_id"], again["outcome"], again["version"]) == ("r1", "published", 2)
    assert again["attempts"] == 0
    assert len(h.builds) == 1 and h.count("coalesced") == 1
    time.sleep(0.01)
    h.handler.handle([request(2, last_n=42)])  # asked after: trains again, next version
    assert [b["version"] for b in h.builds] == [2, 3]
    assert h.slices.calls[-1][1] == 42


def test_gate_rejection_publishes_nothing_and_answers_rejected(tmp_path: Path) -> None:
    h = Harness(tmp_path, passed=False)
    out = h.handler.handle([request(0)])
    (answer,) = outcomes(out)
    assert len(out) == 1  # the outcome only: nothing for the models topic
    assert (answer["outcome"], answer["request_id"], answer["attempts"]) == ("rejected", "r0", 1)
    assert answer["detail"] == "gate: verdict"
    assert answer["model_id"] is None and answer["version"] is None
    assert h.count("rejected") == 1 and h.count("published") == 0
    assert h.handler.summaries[-1].outcome == "rejected"
    assert "verdict" in h.handler.summaries[-1].note
    assert h.ledger.plan("credit").version == 2  # the rejected candidate took no version


def test_refused_data_publishes_nothing_and_answers_refused(tmp_path: Path) -> None:
    h = Harness(tmp_path, refuse=True)
    out = h.handler.handle([request(0)])
    (answer,) = outcomes(out)
    assert len(out) == 1 and answer["outcome"] == "refused"
    assert "too few rows" in answer["detail"] and answer["attempts"] == 1
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
    (answer,) = outcomes(h.handler.handle([request(0)]))
    assert answer["outcome"] == "refused" and "external deployment" in answer["detail"]
    assert h.builds == [] and h.slices.calls == []
    assert h.count("refused") == 1 and h.count("published") == 0


def test_an_unknown_champion_is_refused(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    champion = {"model_name": "credit", "model_id": "f" * 64, "version": 1}
    h.ledger.add_deployment({"name": "credit-dep", "revision": 2, "champion": champion})
    (answer,) = outcomes(h.handler.handle([request(0)]))
    assert answer["outcome"] == "refused" and "unknown or unverified" in answer["detail"]
    assert h.builds == [] and h.count("refused") == 1


def test_coalesced_requests_get_one_outcome_the_newest_requests(tmp_path: Path) -> None:
    h = Harness(tmp_path, passed=False)
    out = h.handler.handle([request(7), request(8), request(9)])
    assert [a["request_id"] for a in outcomes(out)] == ["r9"]
    assert h.count("coalesced") == 2 and h.count("rejected") == 1


def test_a_published_retrain_returns_the_model_and_its_outcome(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    out = h.handler.handle([request(0)])
    model, outcome = out  # the model first: the runner delivers both before it commits
    assert isinstance(model, Outbound) and model.topic == "p.models"
    assert isinstance(outcome, Outbound) and outcome.topic == "p.retrain_outcomes"
    _, record = serde.decode(model.value, expected="ModelPublished")
    (answer,) = outcomes(out)
    assert answer["outcome"] == "published" and answer["request_id"] == "r0"
    assert (answer["model_id"], answer["version"]) == (record["content"]["model_id"], 2)
    assert answer["attempts"] == 1 and answer["detail"] == "gate: verdict"
    assert answer["deployment"] == "credit-dep" and answer["outcome_id"]
    assert abs(answer["at"] - time.time() * 1000) < 60_000


def test_a_transient_read_failure_is_retried_with_a_doubling_backoff(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    h.slices.errors = [RetryableError("actuals has no leader")] * 2
    out = h.handler.handle([request(0)])
    (answer,) = outcomes(out)
    assert (answer["outcome"], answer["attempts"]) == ("published", 3)
    assert h.sleeps == [2.0, 4.0]
    assert len(h.slices.calls) == 3 and len(h.builds) == 1
    assert h.retries() == 2 and h.count("published") == 1 and h.count("failed") == 0
    assert not any(isinstance(o, Rejected) for o in out)


def test_kafka_client_errors_are_retried_as_the_trainer_wires_them(tmp_path: Path) -> None:
    h = Harness(tmp_path, transient=(RetryableError, KafkaException))  # as app.py wires it
    h.slices.errors = [KafkaException(KafkaError(KafkaError._TRANSPORT))]
    (answer,) = outcomes(h.handler.handle([request(0)]))
    assert (answer["outcome"], answer["attempts"]) == ("published", 2)
    assert h.sleeps == [2.0] and h.retries() == 1


def test_transient_failures_that_outlast_the_retries_answer_failed_not_dead_letters(
    tmp_path: Path,
) -> None:
    h = Harness(tmp_path)
    h.slices.always = RetryableError("events topic has no leader")
    out = h.handler.handle([request(0)])
    assert not any(isinstance(o, Rejected) for o in out)  # the outcome reports the request
    (answer,) = outcomes(out)
    assert (answer["outcome"], answer["attempts"]) == ("failed", 3)
    assert "RetryableError" in answer["detail"] and "no leader" in answer["detail"]
    assert h.sleeps == [2.0, 4.0] and len(h.slices.calls) == 3 and h.builds == []
    assert h.retries() == 2 and h.count("failed") == 1


def test_the_backoff_is_capped(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    h.handler.attempts = 6
    h.slices.always = RetryableError("down")
    h.handler.handle([request(0)])
    assert h.sleeps == [2.0, 4.0, 8.0, 16.0, 30.0]


def test_an_unexpected_error_answers_failed_at_once(tmp_path: Path) -> None:
    h = Harness(tmp_path, fail=ValueError("Input contains NaN"))
    out = h.handler.handle([request(0)])
    (answer,) = outcomes(out)
    assert len(out) == 1
    assert (answer["outcome"], answer["attempts"]) == ("failed", 1)
    assert answer["detail"] == "ValueError: Input contains NaN"
    assert h.sleeps == [] and h.retries() == 0 and h.count("failed") == 1


def test_a_fatal_error_propagates(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    h.slices.always = FatalError("producer fenced")
    with pytest.raises(FatalError):
        h.handler.handle([request(0)])
    assert h.sleeps == [] and len(h.slices.calls) == 1


def test_a_failing_deployment_keeps_the_others_outcomes(tmp_path: Path) -> None:
    h = Harness(tmp_path, fail=ValueError("boom"))
    out = h.handler.handle([request(0, deployment="nope"), request(1)])
    (dead,) = [o for o in out if isinstance(o, Rejected)]
    assert dead.reason is Reason.UNKNOWN_DEPLOYMENT  # malformed: dead-lettered as before
    assert [a["outcome"] for a in outcomes(out)] == ["failed"]


def test_the_outcome_module_examples_hold() -> None:
    result = doctest.testmod(retrain_outcome)
    assert result.attempted > 0 and result.failed == 0


def test_a_replayed_request_whose_model_is_out_gets_its_outcome_again(tmp_path: Path) -> None:
    """The exact case of a kill between the model's delivery and the outcome's: r1 is not
    committed, v2 (created after r1) is on the models topic, no outcome for r1 went out. A
    restarted trainer must not train again, and must answer r1."""
    h = Harness(tmp_path)
    asked = int(time.time() * 1000) - 1
    first = h.handler.handle([request(1, at=asked)])
    (model,) = [o for o in first if isinstance(o, Outbound) and o.topic == "p.models"]
    restarted = Harness(tmp_path)  # a new process: no memory of the training
    restarted.ledger.add_model(serde.decode(model.value, expected="ModelPublished")[1])
    out = restarted.handler.handle([request(1, at=asked)])
    assert restarted.builds == [], "v2 answers it: no second training, no v3"
    (answer,) = outcomes(out)
    assert (answer["request_id"], answer["outcome"], answer["version"]) == ("r1", "published", 2)
    assert answer["attempts"] == 0 and "published after this request" in answer["detail"]
    assert [o for o in out if isinstance(o, Outbound) and o.topic == "p.models"] == []
    # the first process, asked again about r1: the same answer, still no training
    (again,) = outcomes(h.handler.handle([request(1, at=asked)]))
    assert again["outcome"] == "published" and len(h.builds) == 1


def test_a_request_made_during_a_rejected_training_gets_that_trainings_answer(
    tmp_path: Path,
) -> None:
    h = Harness(tmp_path)
    h.passed = False
    asked = int(time.time() * 1000) - 1
    (first,) = outcomes(h.handler.handle([request(0, at=asked)]))
    (second,) = outcomes(h.handler.handle([request(1, at=asked)]))
    assert first["outcome"] == second["outcome"] == "rejected" and len(h.builds) == 1
    assert (second["request_id"], second["attempts"]) == ("r1", 0)
