"""A challenger never costs the champion its answers (issue 27).

The champion is a real credit model; each challenger fails its own way: a stand-in session that
raises, a real onnxruntime session fed an input it does not declare, humility rules that break on
the challenger's baseline, a session answering fewer rows than it was given. In shadow mode the
champion answers every event and the failure is counted; in A/B mode a failing variant's events
are dead-lettered by the runner, one by one, and the champion's are answered.
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from services.common import serde
from services.common.messages import Inbound, Outbound, Rejected
from services.scorer.app import ScorerMetrics
from services.scorer.inference import LoadedModel, load_model
from services.scorer.model_store import Snapshot
from services.scorer.routing import bucket
from services.scorer.scoring import ScoringHandler
from services.trainer.dataset import credit_rows
from tests.model_factory import credit_content, deployment
from tests.scorer_support import in_process_scorer

pytestmark = pytest.mark.unit

OUTLIER = {"kind": "outlier", "feature": None, "low": 0, "high": 0, "margin": 0.0}


class Exploding:
    """A session whose every run raises, as a corrupt or exhausted runtime would."""

    def run(self, *_args, **_kwargs):
        raise RuntimeError("challenger session exploded")


@functools.cache
def champion() -> LoadedModel:
    return load_model(credit_content(1))


def raising() -> LoadedModel:
    return dataclasses.replace(champion(), model_id="raising", version=2, session=Exploding())


class OneRow:
    """A session that answers one row whatever it is asked: a malformed model output."""

    def run(self, *_args, **_kwargs):
        return [np.array(["1"]), np.array([[0.2, 0.8]], dtype=np.float32)]


def short_output() -> LoadedModel:
    return dataclasses.replace(champion(), model_id="short", version=6, session=OneRow())


def undeclared_input() -> LoadedModel:
    """A real session asked for a feature its graph does not have: onnxruntime refuses."""
    specs = (*champion().feature_specs, {"name": "ghost", "kind": "numeric"})
    return dataclasses.replace(champion(), model_id="ghost", version=3, feature_specs=specs)


def broken_baseline() -> LoadedModel:
    """Predicts fine; its baseline makes the outlier humility rule raise (min/max not numbers)."""
    baseline = {"features": [{"name": "salary", "kind": "numeric", "min": "a", "max": "b"}]}
    return dataclasses.replace(champion(), model_id="baseline", version=4, baseline=baseline)


def ref(model: LoadedModel) -> dict:
    return {"name": model.name, "model_id": model.model_id, "version": model.version}


def world(challenger: LoadedModel, mode: str = "shadow", weight: float = 0.0, humility=None):
    dep = deployment(
        ref(champion()),
        challengers=({"content": ref(challenger), "weight": weight},),
        mode=mode,
        humility=humility,
    )
    models = {m.model_id: m for m in (champion(), challenger)}
    return Snapshot({"credit": dep}, models)


def events(n: int, seed: int = 3) -> list[Inbound]:
    out = []
    for i, (features, _label) in enumerate(credit_rows(n, seed=seed)):
        record = {
            "association_id": f"a{i}",
            "deployment": "credit",
            "event_time": 1_700_000_000_000 + i,
            "features": features,
            "attributes": {},
        }
        value = serde.encode("FeatureEvent", record)
        out.append(Inbound("events", 0, i, b"k", value, "FeatureEvent", record, 0))
    return out


def predictions(out: list[Outbound | Rejected]) -> list[dict]:
    assert not [o for o in out if isinstance(o, Rejected)]
    return [serde.decode(o.value, expected="Prediction")[1] for o in out if o.topic == "p"]


@pytest.mark.parametrize(
    "challenger, humility",
    [
        (raising, None),
        (undeclared_input, None),
        (broken_baseline, [{**OUTLIER, "action": "flag"}]),
        (short_output, None),
    ],
    ids=["session_raises", "onnxruntime_refuses", "humility_raises", "output_too_short"],
)
def test_a_failing_shadow_challenger_is_skipped_counted_and_the_champion_answers(
    challenger, humility
):
    registry = CollectorRegistry()
    metrics = ScorerMetrics(registry)
    view = world(challenger(), humility=humility)
    handler = ScoringHandler(
        lambda: view, "p", "r", serde.encode, metrics.observe, metrics.challenger_failed
    )
    batch = events(20)
    for _ in range(3):
        rows = predictions(handler.handle(batch))
        assert [r["association_id"] for r in rows] == [m.record["association_id"] for m in batch]
        assert {(r["role"], r["model_id"]) for r in rows} == {("champion", champion().model_id)}
    failures = {"deployment": "credit"}
    assert registry.get_sample_value("streamops_scorer_challenger_failures_total", failures) == 3
    assert handler.challenger_failures == {"credit": 3}
    served = {"deployment": "credit", "version": "1", "role": "champion"}
    assert registry.get_sample_value("streamops_scorer_predictions_total", served) == 60


def test_without_a_failure_the_shadow_still_scores_every_event():
    view = world(dataclasses.replace(champion(), model_id="twin", version=5))
    rows = predictions(ScoringHandler(lambda: view, "p", "r", serde.encode).handle(events(10)))
    assert sorted(r["role"] for r in rows) == ["challenger"] * 10 + ["champion"] * 10


def test_a_failing_ab_variant_dead_letters_its_own_events_and_the_champion_answers_the_rest():
    view = world(raising(), mode="ab", weight=0.5)
    scorer = in_process_scorer(lambda: view, attempts=1)
    batch = events(12)
    sent = scorer.feed([m.value for m in batch])
    on_variant = {
        m.record["association_id"] for m in batch if bucket(m.record["association_id"]) >= 0.5
    }
    assert 0 < len(on_variant) < len(batch)
    answered = [
        serde.decode(v, expected="Prediction")[1]
        for t, _k, v in sent
        if t == scorer.namer.predictions
    ]
    dead = [
        serde.decode(v, expected="DeadLetter")[1]
        for t, _k, v in sent
        if t == scorer.namer.deadletter
    ]
    assert {r["association_id"] for r in answered} == {
        m.record["association_id"] for m in batch
    } - on_variant
    assert all(r["role"] == "champion" for r in answered)
    originals = {
        serde.decode(d["original"], expected="FeatureEvent")[1]["association_id"] for d in dead
    }
    assert originals == on_variant and {d["reason"] for d in dead} == {"handler_failed"}
