"""An external deployment watched like a served one (issue 25), on the real broker and Redis.

The model runs "in the user's service": this test, which reports each prediction and later each
actual through `import streamops`. A drift process computes the windows (accuracy exactly what
was reported: the outside model misses every tenth row), a shift of one feature fires a PSI
breach, and the alerting process delivers a signed webhook for it. A scorer runs beside them the
whole time and answers none of the deployment's events.
"""

from __future__ import annotations

import pytest
import streamops

from services.cli.__main__ import main
from services.common import serde
from services.trainer.credit import credit_rows
from tests.alerting_support import SECRET, Alerting, write_config
from tests.describe_support import CATEGORICAL, credit_table, outside_prediction
from tests.drift_service import start_drift
from tests.integration.test_external_deployment import _models
from tests.kafka_support import count, make_topics, read_all
from tests.model_factory import deployment
from tests.registry_support import eventually
from tests.scorer_support import world
from tests.webhook_receiver import Receiver

pytestmark = pytest.mark.integration

WINDOW = 500  # rows per 60 s window
BASE = 1_760_000_040_000 - 1_760_000_040_000 % 60_000  # a window's start
THRESHOLDS = [
    {"metric": "psi", "feature": "salary", "warning": 0.1, "critical": 0.25,
     "hysteresis": 0.05, "direction": "above"},
    {"metric": "accuracy", "feature": None, "warning": 0.5, "critical": 0.4,
     "hysteresis": 0.05, "direction": "below"},
]  # fmt: skip


def _report_window(client: streamops.Client, k: int, shift: float, model: dict) -> None:
    """Window k (60 s of event time) of the user's service: a prediction per row, then the
    actuals. Time windows, since a prediction reported with its event may reach drift before
    the event does (count windows place a prediction by the events already counted)."""
    start = k * WINDOW
    rows = list(credit_rows(WINDOW, seed=11 + k))
    for i, (features, label) in enumerate(rows):
        said = outside_prediction(label, start + i, "class")
        client.report_prediction(
            "fraud",
            f"tx-{start + i}",
            {**features, "salary": features["salary"] + shift},
            said,
            {said: 0.9, ("0" if said == "1" else "1"): 0.1},
            model=model,
            event_time=BASE + k * 60_000 + i * 10,
        )
    client.flush(30)
    for i, (_features, label) in enumerate(rows):
        client.send_actual("fraud", f"tx-{start + i}", label)
    client.flush(30)


def _reports(bootstrap: str, topic: str) -> list[dict]:
    return [
        serde.decode(v, expected="DriftReport")[1] for _p, _o, _k, v in read_all(bootstrap, topic)
    ]


def test_an_external_deployment_is_monitored_and_alerts_and_the_scorer_never_scores_it(
    kafka_bootstrap, prefix, tmp_path, drift_group, capsys
):
    w = world(kafka_bootstrap, prefix, tmp_path)
    namer = make_topics(kafka_bootstrap, prefix, ["actuals", "drift", "breaches", "retrain"])
    data = credit_table(tmp_path / "train.csv", rows=2000, prediction="class")
    describe = ["models", "describe", "--prefix", prefix, "--keys-dir", str(w.keys_dir),
                "--name", "fraud", "--data", str(data), "--label", "approved",
                "--prediction-column", "pred", "--categorical", ",".join(CATEGORICAL)]  # fmt: skip
    assert main(describe) == 0
    capsys.readouterr()
    (described,) = _models(w)
    w.deploy({**deployment(described, name="fraud"), "external": True, "thresholds": THRESHOLDS})
    champion = {"model_name": "fraud", "model_id": described["model_id"], "version": 1}

    rx = Receiver(SECRET)
    alerting = Alerting(
        kafka_bootstrap, prefix, write_config(tmp_path / "alerting.yaml", {"ops": rx.url}),
        tmp_path / "alerting.log",
    ).start()  # fmt: skip
    # Each report's windows close once the user's service goes quiet (the next window's rows do
    # not carry the watermark far enough): after 5 s here, not the default minute.
    drift = start_drift(
        kafka_bootstrap,
        prefix,
        drift_group,
        tmp_path / "drift.log",
        idle_close_s=5,
        **w.key_flags(),
    )
    scorer = w.scorer(group=f"{prefix}scorer")
    scorer.start()
    try:
        with streamops.Client(bootstrap=kafka_bootstrap, prefix=prefix, environ={}) as client:
            _report_window(client, 0, 0.0, champion)
            _report_window(client, 1, 0.0, champion)  # closes window 0
            first = eventually(lambda: _reports(kafka_bootstrap, namer.drift), 90, "a report")[0]
            assert first["deployment"] == "fraud" and first["event_count"] == WINDOW
            assert first["prediction_count"] == WINDOW  # every reported prediction counted
            assert rx.all() == []  # no drift yet: nothing to say

            for k in range(2, 5):  # salary shifted by far more than its spread
                _report_window(client, k, 150_000.0, champion)
        got = rx.wait_for(
            lambda d: any(
                a["labels"].get("feature") == "salary" for x in d for a in x.payload["alerts"]
            ),
            timeout_s=120,
        )
        alert = next(a for x in got for a in x.payload["alerts"] if a["labels"].get("feature"))
        assert alert["labels"]["deployment"] == "fraud" and alert["labels"]["metric"] == "psi"
        assert all(x.verified == "ok" for x in got)  # signed, and the signature holds
        # Labels join as they arrive, into the window open then: what was reported, weighed.
        labelled = [r for r in _reports(kafka_bootstrap, namer.drift) if r["labels_joined"]]
        joined = sum(r["labels_joined"] for r in labelled)
        correct = sum(r["metrics"]["accuracy"] * r["labels_joined"] for r in labelled)
        assert joined >= 2 * WINDOW and correct / joined == pytest.approx(0.9, abs=0.01)
        assert all(r["unknown_labels"] == 0 for r in labelled)
    finally:
        scorer.terminate()
        drift.terminate()
        alerting.stop()
        rx.close()

    predictions = [
        serde.decode(v, expected="Prediction")[1]
        for _p, _o, _k, v in read_all(kafka_bootstrap, w.namer.predictions)
    ]
    assert len(predictions) == 5 * WINDOW
    assert all(p["input_partition"] == -1 for p in predictions)  # all reported, none scored
    assert count(kafka_bootstrap, w.namer.deadletter) == 0
    assert "deployment fraud r1: external" in scorer.log_tail(400)
