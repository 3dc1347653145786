"""The retrain consumer on the real broker: publishes a gated new version, rejects a worse one."""

from __future__ import annotations

import dataclasses
import threading
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from services.common import serde
from services.trainer.app import run
from services.trainer.config import TrainerSettings
from tests.kafka_support import count, produce, read_all, wait_caught_up
from tests.trainer_support import deployed_champion, outcomes, retrain_request

pytestmark = pytest.mark.integration


class Trainer:
    """`services.trainer.app.run` on a thread, with a registry the test can read."""

    def __init__(self, settings: TrainerSettings) -> None:
        self.settings = settings
        self.registry = CollectorRegistry()
        self.stop = threading.Event()
        self.error: list[BaseException] = []
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            run(self.settings, self.stop, self.registry)
        except BaseException as exc:  # surfaced by the test, not lost in the thread
            self.error.append(exc)

    def __enter__(self) -> Trainer:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop.set()
        self.thread.join(30)
        assert not self.thread.is_alive(), "trainer did not stop within 30 s"
        assert not self.error, self.error

    def outcomes(self, outcome: str) -> float:
        value = self.registry.get_sample_value(
            "streamops_trainer_trainings_total", {"outcome": outcome}
        )
        return value or 0.0


def test_retrain_publishes_a_gated_version_then_rejects_a_worse_one(
    kafka_bootstrap: str, prefix: str, tmp_path: Path
) -> None:
    setup = deployed_champion(kafka_bootstrap, prefix, tmp_path)
    namer, keys, verify, v1 = setup.namer, setup.keys, setup.verify, setup.v1
    settings = TrainerSettings(
        kafka_bootstrap=kafka_bootstrap,
        topic_prefix=prefix,
        keys_dir=str(keys),
        group_id=f"{prefix}trainer",
        last_n=1000,
        cv_folds=2,
        metrics_port=0,
    )

    produce(
        kafka_bootstrap,
        namer.retrain,
        [retrain_request("r1"), retrain_request("r2"), retrain_request("r3", "ghost")],
    )
    with Trainer(settings) as trainer:
        wait_caught_up(kafka_bootstrap, settings.group_id, namer.retrain, timeout_s=180)
        assert trainer.outcomes("published") == 1
        assert trainer.outcomes("coalesced") == 1  # r2 rode along with r1
    records = read_all(kafka_bootstrap, namer.models, idle_s=0.5)
    assert len(records) == 2
    v2 = verify(serde.decode(records[-1][3], expected="ModelPublished")[1])
    assert (v2["version"], v2["parent_id"]) == (2, v1["model_id"])
    data = v2["lineage"]["dataset"]
    assert (data["kind"], data["rows"]) == ("stream", 1000)
    assert [s["name"] for s in v2["signature_in"]["features"]] == [
        s["name"] for s in v1["signature_in"]["features"]
    ]
    (dead,) = [
        serde.decode(v, expected="DeadLetter")[1]
        for _p, _o, _k, v in read_all(kafka_bootstrap, namer.deadletter, idle_s=0.5)
    ]
    assert dead["reason"] == "unknown_deployment"
    (answer,) = outcomes(kafka_bootstrap, namer.retrain_outcomes)  # r1 and r2: one training
    assert answer["outcome"] == "published" and answer["request_id"] in ("r1", "r2")
    assert (answer["model_id"], answer["version"]) == (v2["model_id"], 2)

    # Logistic regression cannot learn Agrawal function 0 (non-monotone in age): the gate
    # must refuse it against the hgb champion on the same fresh holdout.
    worse = dataclasses.replace(settings, estimator="logreg")  # same group: only r4 is new
    produce(kafka_bootstrap, namer.retrain, [retrain_request("r4")])
    with Trainer(worse) as trainer:
        wait_caught_up(kafka_bootstrap, worse.group_id, namer.retrain, timeout_s=180)
        assert trainer.outcomes("rejected") == 1
        assert trainer.outcomes("published") == 0
    assert count(kafka_bootstrap, namer.models) == 2
    last = outcomes(kafka_bootstrap, namer.retrain_outcomes)[-1]
    assert (last["request_id"], last["outcome"]) == ("r4", "rejected")
