"""R10 at the gate: malicious ONNX is refused before onnxruntime sees it."""

from __future__ import annotations

import pickle

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from services.common.errors import PoisonMessage, Reason
from services.scorer.model_guard import GuardLimits, inspect_model

pytestmark = pytest.mark.unit


def tiny_model(weight: np.ndarray | None = None) -> onnx.ModelProto:
    """y = x + w, a valid model with one initializer."""
    w = numpy_helper.from_array(weight if weight is not None else np.ones((1, 3), np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("Add", ["x", "w"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 3])],
        initializer=[w],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=9)


def refused(data: bytes, limits: GuardLimits | None = None) -> str:
    with pytest.raises(PoisonMessage) as info:
        inspect_model(data, limits)
    assert info.value.reason is Reason.UNSAFE_MODEL
    return info.value.detail


def test_a_valid_model_passes_and_runs():
    data = tiny_model().SerializeToString()
    inspect_model(data)
    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    out = session.run(None, {"x": np.zeros((2, 3), np.float32)})[0]
    assert out.tolist() == [[1, 1, 1], [1, 1, 1]]


def test_external_data_is_refused_before_any_file_is_read():
    model = tiny_model()
    w = model.graph.initializer[0]
    w.ClearField("raw_data")
    w.data_location = TensorProto.EXTERNAL
    entry = w.external_data.add()
    entry.key, entry.value = "location", "../../etc/passwd"
    assert "external data" in refused(model.SerializeToString())


def test_external_data_inside_a_node_attribute_is_refused():
    model = tiny_model()
    const = helper.make_node(
        "Constant", [], ["c"], value=numpy_helper.from_array(np.ones(3, np.float32), "c")
    )
    const.attribute[0].t.data_location = TensorProto.EXTERNAL
    model.graph.node.append(const)
    assert "external data" in refused(model.SerializeToString())


def test_a_pickle_disguised_as_onnx_is_refused():
    assert "pickle" in refused(pickle.dumps({"model": "evil"}, protocol=4))
    assert "not an ONNX model" in refused(b"\x00garbage" * 10)


def test_giant_dimensions_are_refused():
    model = tiny_model()
    model.graph.initializer[0].dims[:] = [100_000, 100_000]
    assert "elements" in refused(model.SerializeToString())


def test_foreign_operator_domains_and_oversize_models_are_refused():
    model = tiny_model()
    model.opset_import.append(helper.make_opsetid("com.evil", 1))
    assert "domain" in refused(model.SerializeToString())
    data = tiny_model().SerializeToString()
    assert "bytes" in refused(data, GuardLimits(max_model_bytes=len(data) - 1))
