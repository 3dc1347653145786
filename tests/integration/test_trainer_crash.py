"""Issue 26: a trainer killed with SIGKILL in the middle of a retrain still ends in a published
model, once, and a "published" outcome for the request.

The trainer runs as a real process (`python -m services.trainer`). The shared runner commits a
request's offset only after the model and the outcome the handler returned are delivered, so a
kill during training leaves the request uncommitted: the restarted trainer reads it again,
trains again and answers it.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from services.common import serde
from tests.kafka_support import ServiceProcess, count, produce, read_all, wait_caught_up
from tests.trainer_support import deployed_champion, outcomes, retrain_request, start_trainer

pytestmark = pytest.mark.integration

# The retrain test's 1000 rows and 4-point grid of hgb, with 5 folds instead of 2: seconds of
# training, so that a kill sent once the log says "training" lands before the model is published.
SETTINGS = {"last_n": 1000, "cv_folds": 5}
TRAINING = "(request r1, accuracy breach): 1000 rows, training credit v2"


def wait_for_outcome(bootstrap: str, topic: str, trainer: ServiceProcess, timeout_s: float) -> None:
    """Wait until `topic` holds a record; fails if the trainer exits or the time runs out."""
    deadline = time.monotonic() + timeout_s
    while count(bootstrap, topic) == 0:
        assert trainer.alive(), f"trainer exited:\n{trainer.log_tail()}"
        assert time.monotonic() < deadline, f"no outcome in {timeout_s} s:\n{trainer.log_tail()}"
        time.sleep(0.1)


def test_trainer_killed_mid_training_trains_again_and_publishes_once(
    kafka_bootstrap: str, prefix: str, tmp_path: Path
) -> None:
    setup = deployed_champion(kafka_bootstrap, prefix, tmp_path)
    namer = setup.namer
    group = f"{prefix}trainer"
    produce(kafka_bootstrap, namer.retrain, [retrain_request("r1")])

    first = start_trainer(
        kafka_bootstrap, prefix, setup.keys, group, tmp_path / "trainer-1.log", **SETTINGS
    )
    try:
        first.wait_for_log(TRAINING, timeout_s=60)
    finally:
        first.kill9()
    killed = time.monotonic()
    published = count(kafka_bootstrap, namer.models) - 1
    assert published == 0, "the kill came after publishing: training is too quick to interrupt"
    assert count(kafka_bootstrap, namer.retrain_outcomes) == 0

    second = start_trainer(
        kafka_bootstrap, prefix, setup.keys, group, tmp_path / "trainer-2.log", **SETTINGS
    )
    try:
        wait_for_outcome(kafka_bootstrap, namer.retrain_outcomes, second, timeout_s=60)
        answered = time.monotonic() - killed
        wait_caught_up(kafka_bootstrap, group, namer.retrain, timeout_s=30)
    finally:
        code, _ = second.terminate()
    assert code == 0, f"trainer exited {code}:\n{second.log_tail()}"
    print(f"issue 26: kill -9 mid-training to a published outcome in {answered:.1f} s")

    assert TRAINING in (tmp_path / "trainer-2.log").read_text()  # trained again after restart
    records = read_all(kafka_bootstrap, namer.models, idle_s=0.5)
    assert len(records) == 2, "exactly one new version"
    v2 = setup.verify(serde.decode(records[-1][3], expected="ModelPublished")[1])
    assert (v2["version"], v2["parent_id"]) == (2, setup.v1["model_id"])
    (answer,) = outcomes(kafka_bootstrap, namer.retrain_outcomes)
    assert (answer["request_id"], answer["outcome"]) == ("r1", "published")
    assert (answer["model_id"], answer["version"]) == (v2["model_id"], 2)
    assert count(kafka_bootstrap, namer.deadletter) == 0
