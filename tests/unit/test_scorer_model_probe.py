"""R10 at run time: graphs whose shapes become huge only when run are refused at load.

Each bomb stores nothing larger than a two-element shape, so the static guard lets it through;
the probe (one synthetic row in a memory-limited child process) refuses it, the scorer's rejected
metric counts it, and the previous champion keeps serving.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper
from prometheus_client import CollectorRegistry

from services.common.deployment_revisions import RevisionGate
from services.common.errors import PoisonMessage, Reason
from services.common.model_verifier import ModelVerifier
from services.common.signing import key_id_of
from services.common.topics import TopicNamer
from services.scorer.app import ScorerMetrics, _apply_control
from services.scorer.inference import load_model, predict
from services.scorer.model_guard import inspect_model
from services.scorer.model_probe import ProbeLimits, ProbeServer, probe_model
from services.scorer.model_store import ModelStore
from services.scorer.sessions import new_session
from services.trainer.dataset import credit_rows
from tests.model_factory import credit_content, deployment, keypair, published, runtime_bomb
from tests.signing_support import session_verifier, signed_deployment

pytestmark = pytest.mark.unit

BOMBS = ("constant_of_shape", "expand", "tile")


def refused(data: bytes, limits: ProbeLimits | None = None) -> str:
    with pytest.raises(PoisonMessage) as info:
        probe_model(data, limits)
    assert info.value.reason is Reason.UNSAFE_MODEL
    return info.value.detail


@pytest.mark.parametrize("size", [100_000, 20_000])  # 40 GB; 1.6 GB (under onnxruntime's caps)
@pytest.mark.parametrize("kind", BOMBS)
def test_runtime_shape_bombs_pass_the_static_guard_and_are_refused_by_the_probe(kind, size):
    data = runtime_bomb(kind, size)
    inspect_model(data)  # what the guard alone let through
    assert "probe inference failed" in refused(data)


def test_one_row_with_an_absurd_output_is_refused():
    data = runtime_bomb("constant_of_shape", 1000)  # 4 MB: fits the memory limit
    assert "output of 1000000 elements" in refused(data)


def test_a_probe_that_runs_too_long_is_killed_and_refused():
    big = numpy_helper.from_array(np.array([3000, 3000], np.int64), "shape")
    one = numpy_helper.from_array(np.ones(1, np.float32))
    graph = helper.make_graph(
        [
            helper.make_node("ConstantOfShape", ["shape"], ["a"], value=one),
            helper.make_node("MatMul", ["a", "a"], ["b"]),
            helper.make_node("MatMul", ["b", "b"], ["c"]),
            helper.make_node("Add", ["x", "c"], ["y"]),
        ],
        "slow",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        initializer=[big],
    )
    data = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=9
    ).SerializeToString()
    started = time.monotonic()
    assert "did not finish in 0.3 s" in refused(data, ProbeLimits(timeout_s=0.3))
    assert time.monotonic() - started < 5
    probe_model(credit_content(1)["onnx"])  # the server survived the kill


def test_a_normal_model_passes_and_the_probe_costs_little_load_time():
    content = credit_content(1)
    probe_model(content["onnx"])  # the probe server is started once per process
    probe_s, plain_s = [], []
    for _ in range(5):
        started = time.perf_counter()
        probe_model(content["onnx"])
        probe_s.append(time.perf_counter() - started)
        started = time.perf_counter()
        inspect_model(content["onnx"])
        new_session(content["onnx"])
        plain_s.append(time.perf_counter() - started)
    model = load_model(content)
    rows = [f for f, _ in credit_rows(3, seed=1)]
    assert len(predict(model, rows).predictions) == 3
    print(
        f"probe adds {1000 * min(probe_s):.1f}-{1000 * max(probe_s):.1f} ms to a load of "
        f"{1000 * min(plain_s):.1f} ms (guard + session)"
    )
    assert max(probe_s) < 0.5  # the hot swap target is 1 s in all


def test_a_bomb_deployed_over_a_champion_is_rejected_counted_and_the_champion_keeps_serving(
    tmp_path,
):
    key = keypair(tmp_path)
    store = ModelStore(ModelVerifier({key_id_of(key.public_key()): key.public_key()}), load_model)
    registry = CollectorRegistry()
    metrics = ScorerMetrics(registry)
    namer = TopicNamer("t.")
    apply = _apply_control(store, namer, metrics, session_verifier(), RevisionGate())
    good = published(credit_content(1), key)
    bomb = published(credit_content(1), key, version=2, onnx=runtime_bomb("constant_of_shape"))
    apply(namer.models, good)
    apply(namer.deployments, signed_deployment(deployment(good["content"], revision=1)))
    apply(namer.models, bomb)
    apply(namer.deployments, signed_deployment(deployment(bomb["content"], revision=2)))
    view = store.snapshot()
    served = view.deployments["credit"]
    assert served["revision"] == 1 and set(view.models) == {good["content"]["model_id"]}
    rejected = registry.get_sample_value(
        "streamops_scorer_models_rejected_total", {"reason": "unsafe_model"}
    )
    assert rejected == 1 and store.rejected == {"unsafe_model": 1}
    model = view.models[served["champion"]["model_id"]]
    assert len(predict(model, [f for f, _ in credit_rows(2, seed=2)]).predictions) == 2


def test_the_probe_server_never_sees_the_scorers_settings_or_secrets(monkeypatch):
    monkeypatch.setenv("STREAMOPS_KAFKA_SASL_PASSWORD", "hunter2")
    server = ProbeServer()
    try:
        assert server.ask(credit_content(1)["onnx"], ProbeLimits())["ok"]
        environ = Path(f"/proc/{server.pid}/environ").read_bytes()
    finally:
        server.stop()
    assert b"hunter2" not in environ and b"STREAMOPS" not in environ
    assert b"PYTHONPATH=" in environ
