"""Inspect ONNX bytes before onnxruntime ever sees them (R10).

onnxruntime will read external data files relative to the working directory when a model asks
for it, and a hostile model can declare absurd tensor shapes. So every model is parsed as a
protobuf first and refused when it: is not an ONNX ModelProto at all (a pickle in disguise),
declares external data anywhere (initializers, node attributes, sparse tensors, subgraphs),
declares a tensor larger than the limits, uses an operator domain we do not serve, or carries
local functions. Only then is a session created, from bytes, with threads bounded.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator

import onnx
from google.protobuf.message import DecodeError
from onnx import AttributeProto, GraphProto, ModelProto, TensorProto

from services.common.errors import PoisonMessage, Reason

ALLOWED_DOMAINS = frozenset({"", "ai.onnx", "ai.onnx.ml"})


@dataclasses.dataclass(frozen=True)
class GuardLimits:
    """How big a model may be."""

    max_model_bytes: int = 32 * 1024 * 1024
    max_tensor_elements: int = 50_000_000
    max_dims: int = 8
    max_nodes: int = 200_000


def _unsafe(detail: str) -> PoisonMessage:
    return PoisonMessage(Reason.UNSAFE_MODEL, detail)


def _graphs(graph: GraphProto) -> Iterator[GraphProto]:
    yield graph
    for node in graph.node:
        for attr in node.attribute:
            if attr.type == AttributeProto.GRAPH:
                yield from _graphs(attr.g)
            elif attr.type == AttributeProto.GRAPHS:
                for sub in attr.graphs:
                    yield from _graphs(sub)


def _tensors(graph: GraphProto) -> Iterator[TensorProto]:
    yield from graph.initializer
    for sparse in graph.sparse_initializer:
        yield sparse.values
        yield sparse.indices
    for node in graph.node:
        for attr in node.attribute:
            if attr.type == AttributeProto.TENSOR:
                yield attr.t
            elif attr.type == AttributeProto.TENSORS:
                yield from attr.tensors
            elif attr.type == AttributeProto.SPARSE_TENSOR:
                yield attr.sparse_tensor.values
                yield attr.sparse_tensor.indices


def _check_tensor(tensor: TensorProto, limits: GuardLimits) -> None:
    if tensor.data_location == TensorProto.EXTERNAL or len(tensor.external_data) > 0:
        raise _unsafe(f"tensor {tensor.name!r} declares external data")
    if len(tensor.dims) > limits.max_dims:
        raise _unsafe(f"tensor {tensor.name!r} has {len(tensor.dims)} dimensions")
    if any(d < 0 for d in tensor.dims):
        raise _unsafe(f"tensor {tensor.name!r} has a negative dimension")
    elements = math.prod(tensor.dims) if tensor.dims else 1
    if elements > limits.max_tensor_elements:
        raise _unsafe(f"tensor {tensor.name!r} declares {elements} elements")


def inspect_model(data: bytes, limits: GuardLimits | None = None) -> ModelProto:
    """Parse and check ONNX bytes; raises PoisonMessage(UNSAFE_MODEL) with the reason."""
    limits = limits or GuardLimits()
    if len(data) > limits.max_model_bytes:
        raise _unsafe(f"model is {len(data)} bytes, above {limits.max_model_bytes}")
    if data[:2] in (b"\x80\x02", b"\x80\x03", b"\x80\x04", b"\x80\x05"):
        raise _unsafe("bytes are a Python pickle, not ONNX")
    try:
        model = onnx.load_from_string(data)
    except (DecodeError, ValueError, RuntimeError) as exc:
        raise _unsafe(f"not an ONNX model: {type(exc).__name__}") from None
    if not model.HasField("graph") or not model.opset_import:
        raise _unsafe("not an ONNX model: no graph or no opset")
    if len(model.functions) > 0:
        raise _unsafe("model carries local functions")
    for opset in model.opset_import:
        if opset.domain not in ALLOWED_DOMAINS:
            raise _unsafe(f"operator domain {opset.domain!r} is not served")
    nodes = 0
    for graph in _graphs(model.graph):
        nodes += len(graph.node)
        if nodes > limits.max_nodes:
            raise _unsafe(f"model has more than {limits.max_nodes} nodes")
        for node in graph.node:
            if node.domain not in ALLOWED_DOMAINS:
                raise _unsafe(f"node {node.name!r} uses domain {node.domain!r}")
        for tensor in _tensors(graph):
            _check_tensor(tensor, limits)
    return model
