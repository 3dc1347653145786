"""Serde: round trips for every record, poison (R6) and size bombs (R7), JSON input, canonical."""

from __future__ import annotations

import gc
import json
import time

import pytest

from services.common import serde
from services.common.avro_guard import walk
from services.common.errors import PoisonMessage, Reason
from services.common.schemas import default_schemas
from services.registry import release_policy
from tests.poison import EXPECTED_REASON, POISON_KINDS, make_poison, size_bomb

pytestmark = pytest.mark.unit

T = 1_700_000_000_000
REF = {"model_name": "credit", "model_id": "ab" * 32, "version": 3}
FEATURE_BASELINE = {
    "name": "age",
    "kind": "numeric",
    "count": 10,
    "missing_rate": 0.0,
    "min": 1.0,
    "max": 9.0,
    "mean": 5.0,
    "std": 2.0,
    "bin_edges": [1.0, 5.0, 9.0],
    "bin_counts": [5, 5],
    "categories": {},
}
CONTENT = {
    "model_id": "ab" * 32,
    "name": "credit",
    "version": 3,
    "parent_id": None,
    "created_at": T,
    "task": "classification",
    "estimator": "hgb",
    "onnx": b"\x08\x07onnx",
    "signature_in": {"features": [{"name": "age", "kind": "numeric", "categories": []}]},
    "classes": ["0", "1"],
    "lineage": {
        "dataset": {
            "kind": "builtin",
            "uri": "builtin:credit",
            "content_hash": "cd" * 32,
            "rows": 10,
            "columns": [{"name": "age", "type": "numeric"}],
            "stream_slices": [{"topic": "e", "partition": 0, "start_offset": 0, "end_offset": 9}],
        },
        "params": {"max_depth": "3", "lr": "0.1"},
        "search_space": "{}",
        "cv_folds": 3,
        "split_seed": 0,
        "holdout_fraction": 0.2,
        "metrics": {"f1": 0.9, "roc_auc": 0.95},
        "parity": {"rows": 2, "label_agreement": 1.0, "max_prob_diff": 1e-7},
        "code_version": "streamops dev",
    },
    "baseline": {
        "features": [FEATURE_BASELINE],
        "prediction": {
            "bin_edges": [0.0, 1.0],
            "bin_counts": [10],
            "class_counts": {"0": 6, "1": 4},
        },
        "importances": {"age": 1.0},
    },
}
SAMPLES = {
    "FeatureEvent": {
        "association_id": "a1",
        "deployment": "credit",
        "event_time": T,
        "features": {"age": 41.0, "car": "3", "zip": None},
        "attributes": {"region": "eu"},
    },
    "Prediction": {
        "association_id": "a1",
        "deployment": "credit",
        "model_name": "credit",
        "model_version": 3,
        "model_id": "ab" * 32,
        "role": "champion",
        "served": True,
        "prediction": "1",
        "probabilities": {"0": 0.2, "1": 0.8},
        "humility": ["uncertain"],
        "overridden": False,
        "event_time": T,
        "scored_time": T + 5,
        "input_partition": 2,
        "input_offset": 99,
    },
    "Actual": {"association_id": "a1", "deployment": "credit", "label": 2.5, "actual_time": T},
    "ModelPublished": {"content": CONTENT, "key_id": "0123456789abcdef", "signature": b"s" * 64},
    "Deployment": {
        "name": "credit",
        "revision": 2,
        "updated_at": T,
        "updated_by": "ann",
        "reason": "r",
        "champion": REF,
        "challengers": [{"model": {**REF, "version": 4}, "weight": 0.1}],
        "mode": "ab",
        "humility": [
            {
                "kind": "outlier",
                "feature": "age",
                "low": 0.0,
                "high": 0.0,
                "margin": 0.1,
                "action": "override",
                "override_value": "0",
            }
        ],
        "thresholds": [
            {
                "metric": "psi",
                "feature": None,
                "warning": 0.1,
                "critical": 0.25,
                "hysteresis": 0.02,
                "direction": "above",
            }
        ],
        "policy": {"auto_approve": False, "retrain_after_windows": 3, "review_topic": None},
        "window_seconds": 60,
        "external": False,
        "label_delay_seconds": 3600,
        # every field of the release policy, as the registry completes it
        "release": {**release_policy.DEFAULTS, "retrain_after_labels": 5000},
        "key_id": "0123456789abcdef",  # the registry's signature
        "signature": b"s" * 64,
    },
    "DriftReport": {
        "deployment": "credit",
        "model_id": "ab" * 32,
        "model_version": 3,
        "window_start": T,
        "window_end": T + 60_000,
        "event_count": 1000,
        "prediction_count": 1000,
        "features": [
            {
                "name": "age",
                "psi": 0.3,
                "ks": 1e-5,
                "js": 0.2,
                "chi2_p": None,
                "importance": 1.0,
                "missing_rate": 0.0,
                "out_of_range_rate": 0.01,
                "unseen_rate": 0.0,
                "observations": 1000,
                "psi_bins": 10,
                "psi_needs": 0,
            }
        ],
        "weighted_drift": 0.2,
        "prediction_psi": 0.05,
        "metrics": {"accuracy": 0.9},
        "label_coverage": 0.5,
        "label_delay_ms_p50": 3000.0,
        "schema_violations": 1,
        "late_events": 0,
        "change_point": False,
        "challengers": [
            {
                "model_id": "cd" * 32,
                "model_version": 4,
                "metrics": {"f1": 0.8},
                "paired": {
                    "n": 400,
                    "champion_only": 12,
                    "challenger_only": 30,
                    "diff_sum": 0.0,
                    "diff_sq_sum": 0.0,
                },
            },
            {"model_id": "ef" * 32, "model_version": 5, "metrics": {}, "paired": None},
        ],
        "labels_joined": 500,
        "unknown_labels": 2,
    },
    "ThresholdBreach": {
        "breach_id": "b1",
        "deployment": "credit",
        "kind": "data_drift",
        "metric": "psi",
        "feature": "age",
        "severity": "critical",
        "status": "firing",
        "value": 0.3,
        "threshold": 0.25,
        "window_start": T,
        "window_end": T + 60_000,
        "model_id": "ab" * 32,
        "model_version": 3,
        "observed_at": T + 61_000,
        "labels": {"team": "risk"},
    },
    "RetrainRequest": {
        "request_id": "r1",
        "deployment": "credit",
        "reason": "drift",
        "requested_by": "alerting",
        "requested_at": T,
        "breach_ids": ["b1"],
        "last_n": 5000,
    },
    "RetrainOutcome": {
        "outcome_id": "o1",
        "request_id": "r1",
        "deployment": "credit",
        "outcome": "published",
        "detail": "roc_auc 0.91 >= champion 0.90 - 0.02",
        "model_id": "ab" * 32,
        "version": 4,
        "attempts": 2,
        "at": T,
    },
    "GovernanceEvent": {
        "event_id": "g1",
        "deployment": "credit",
        "action": "approve",
        "actor": "bob",
        "role": "owner",
        "request_id": "q1",
        "reason": "ok",
        "at": T,
        "payload": "{}",
        "previous_revision": 1,
        "new_revision": 2,
    },
    "DeadLetter": {
        "source_topic": "streamops.events",
        "source_partition": 1,
        "source_offset": 7,
        "source_key": b"k",
        "original": b"\x00\x01",
        "stage": "decode",
        "reason": "not_avro",
        "error": "no marker",
        "service": "scorer",
        "failed_at": T,
        "attempts": 1,
    },
}


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_round_trip_every_record(name):
    data = serde.encode(name, SAMPLES[name])
    assert data[:2] == b"\xc3\x01" and data[2:10] == serde.fingerprint_header(name)[1]
    assert serde.decode(data, expected=name) == (name, SAMPLES[name])
    assert serde.decode(data)[0] == name


@pytest.mark.parametrize("kind", POISON_KINDS)
def test_each_poison_is_refused_with_its_reason(kind):
    with pytest.raises(PoisonMessage) as info:
        serde.decode(make_poison(kind, seed=1), expected="FeatureEvent", allow_json=True)
    assert info.value.reason.value == EXPECTED_REASON[kind]


def _rss_kb() -> int:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))


def test_size_bombs_are_refused_before_they_cost_memory():
    gc.collect()
    before = _rss_kb()
    for declared in (50_000_000, 2**31, 2**40):
        with pytest.raises(PoisonMessage) as info:
            serde.decode(size_bomb(declared), expected="FeatureEvent")
        assert info.value.reason is Reason.OVERSIZE
    # a model record within the byte limit but holding millions of tiny items
    content = {
        **CONTENT,
        "baseline": {
            **CONTENT["baseline"],
            "features": [{**FEATURE_BASELINE, "bin_counts": [1] * 3_000_000}],
        },
    }
    big = serde.encode("ModelPublished", {**SAMPLES["ModelPublished"], "content": content})
    del content
    gc.collect()
    before = min(before, _rss_kb())
    with pytest.raises(PoisonMessage) as info:
        serde.decode(big, expected="ModelPublished")
    assert info.value.reason is Reason.OVERSIZE and "items" in info.value.detail
    assert (_rss_kb() - before) / 1024 < 50


def test_oversize_messages_are_refused_by_length():
    event = {**SAMPLES["FeatureEvent"], "features": {f"f{i}": "x" * 100 for i in range(1000)}}
    with pytest.raises(PoisonMessage) as info:
        serde.decode(serde.encode("FeatureEvent", event), expected="FeatureEvent")
    assert info.value.reason is Reason.OVERSIZE


def test_json_events_equal_the_avro_path():
    line = json.dumps(
        {
            "association_id": "a1",
            "deployment": "credit",
            "event_time": T,
            "features": {"age": 41, "car": "3", "zip": None},
            "attributes": {"region": "eu"},
        }
    ).encode()
    assert (
        serde.decode(line, expected="FeatureEvent", allow_json=True)[1] == SAMPLES["FeatureEvent"]
    )
    iso = (
        b'{"association_id": "a", "deployment": "d", "label": "1", '
        b'"actual_time": "2023-11-14T22:13:20Z"}'
    )
    assert serde.decode(iso, expected="Actual", allow_json=True)[1]["actual_time"] == T


@pytest.mark.parametrize(
    "line, reason",
    [
        (b'{"association_id": "a", "deployment": "d", "features": {"x": NaN}}', "non_finite"),
        (b'{"association_id": "a", "deployment": "d", "features": {"x": true}}', "wrong_type"),
        (b'{"association_id": "a", "deployment": "d", "features": {}, "extra": 1}', "wrong_type"),
        (b'{"association_id": 5, "deployment": "d", "features": {}}', "wrong_type"),
        (b'{"association_id": "a", "deployment": "d", "features": {}', "invalid_json"),
        (b'["not", "an", "object"]', "wrong_type"),
    ],
)
def test_bad_json_is_refused_with_a_reason(line, reason):
    with pytest.raises(PoisonMessage) as info:
        serde.decode(line, expected="FeatureEvent", allow_json=True)
    assert info.value.reason.value == reason


def test_json_is_only_accepted_where_the_topic_allows_it():
    line = b'{"association_id": "a", "deployment": "d", "features": {}}'
    with pytest.raises(PoisonMessage) as info:
        serde.decode(line, expected="FeatureEvent", allow_json=False)
    assert info.value.reason is Reason.NOT_AVRO


def test_canonical_bytes_ignore_map_insertion_order():
    reordered = json.loads(json.dumps(CONTENT, default=lambda b: b.hex()))
    reordered["onnx"] = CONTENT["onnx"]
    reordered["lineage"]["params"] = dict(reversed(list(CONTENT["lineage"]["params"].items())))
    reordered["lineage"]["metrics"] = {"roc_auc": 0.95, "f1": 0.9}
    assert serde.canonical_bytes("ModelContent", reordered) == serde.canonical_bytes(
        "ModelContent", CONTENT
    )
    changed = {**CONTENT, "version": 4}
    assert serde.canonical_bytes("ModelContent", changed) != serde.canonical_bytes(
        "ModelContent", CONTENT
    )


def _varint(n: int) -> bytes:
    z, out = (n << 1) ^ (n >> 63), bytearray()
    while z > 0x7F:
        out.append(z & 0x7F | 0x80)
        z >>= 7
    return bytes(out + bytes([z]))


def test_a_string_declaring_a_huge_length_is_a_bomb():
    fp = serde.fingerprint_header("FeatureEvent")[1]
    gc.collect()
    before = _rss_kb()
    for declared in (50_000_000, 2**40, 2**62):
        data = b"\xc3\x01" + fp + _varint(declared) + b"abc"
        with pytest.raises(PoisonMessage) as info:
            serde.decode(data, expected="FeatureEvent")
        assert info.value.reason is Reason.OVERSIZE, info.value.detail
    assert (_rss_kb() - before) / 1024 < 50


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_every_cut_of_every_record_is_refused(name):
    data = serde.encode(name, SAMPLES[name])
    for end in range(len(data)):
        with pytest.raises(PoisonMessage) as info:
            serde.decode(data[:end], expected=name)
        # a cut inside a declared length reads as a bomb only when that length is absurd
        assert info.value.reason in (Reason.TRUNCATED, Reason.NOT_AVRO), (end, info.value)


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_the_walker_measures_what_fastavro_reads(name):
    body = serde.encode(name, SAMPLES[name])[10:]
    assert walk(body, default_schemas().parsed(name)) == len(body)


def test_an_impossible_union_branch_is_a_wrong_type():
    fp = serde.fingerprint_header("Actual")[1]
    body = _varint(1) + b"a" + _varint(1) + b"d" + _varint(7) + b"\x00" * 9
    with pytest.raises(PoisonMessage) as info:
        serde.decode(b"\xc3\x01" + fp, expected="Actual")
    assert info.value.reason is Reason.TRUNCATED
    with pytest.raises(PoisonMessage) as info:
        serde.decode(b"\xc3\x01" + fp + body, expected="Actual")
    assert info.value.reason is Reason.WRONG_TYPE


def test_limits_and_item_budget_are_configurable():
    event = serde.encode("FeatureEvent", SAMPLES["FeatureEvent"])
    tight = serde.Serde(default_schemas(), limits={"FeatureEvent": len(event) - 1})
    with pytest.raises(PoisonMessage) as info:
        tight.decode(event)
    assert info.value.reason is Reason.OVERSIZE
    assert serde.Serde(default_schemas()).decode(event)[1] == SAMPLES["FeatureEvent"]
    few = serde.Serde(default_schemas(), max_items=10)
    many = {**SAMPLES["FeatureEvent"], "features": {f"f{i}": float(i) for i in range(400)}}
    data = serde.encode("FeatureEvent", many)
    assert len(data) > serde.WALK_ABOVE  # walked before decoding
    with pytest.raises(PoisonMessage) as info:
        few.decode(data)
    assert info.value.reason is Reason.OVERSIZE and "items" in info.value.detail


def test_non_finite_predictions_and_labels_are_refused():
    cases = [
        ("Actual", {**SAMPLES["Actual"], "label": float("nan")}),
        ("Prediction", {**SAMPLES["Prediction"], "prediction": float("inf")}),
        ("Prediction", {**SAMPLES["Prediction"], "probabilities": {"1": float("nan")}}),
    ]
    for name, record in cases:
        with pytest.raises(PoisonMessage) as info:
            serde.decode(serde.encode(name, record), expected=name)
        assert info.value.reason is Reason.NON_FINITE


def test_json_actuals_default_their_time_to_now():
    before = int(time.time() * 1000)
    name, record = serde.decode(
        b' {"association_id": "a", "deployment": "d", "label": 1}',
        expected="Actual",
        allow_json=True,
    )
    assert name == "Actual" and record["label"] == 1.0
    assert before <= record["actual_time"] <= int(time.time() * 1000)
    avro = serde.decode(serde.encode("Actual", record), expected="Actual")[1]
    assert avro == record
