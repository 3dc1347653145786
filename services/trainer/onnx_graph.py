"""Edits of an ONNX graph so it takes and gives what the scorer feeds and reads.

The scorer feeds one ``[N, 1]`` input per feature, named as the column, and reads the label
(or value) as the first output and, for classifiers, a plain probability matrix as the second.

skl2onnx turns input names into identifiers (``intensity-mean`` becomes ``intensity_mean``,
``a.b`` becomes ``a_b``), while the scorer and the parity check feed inputs by the column's
real name. ONNX names are plain strings to onnxruntime, so the graph's inputs are renamed back
to the columns, in order; an internal tensor that happens to carry a column's name (a column
called ``label``) is renamed out of the way first.

>>> from onnx import helper, TensorProto
>>> x = helper.make_tensor_value_info("a_b", TensorProto.FLOAT, [None, 1])
>>> y = helper.make_tensor_value_info("label", TensorProto.FLOAT, [None, 1])
>>> g = helper.make_graph([helper.make_node("Identity", ["a_b"], ["label"])], "g", [x], [y])
>>> m = helper.make_model(g)
>>> restore_input_names(m, ["label"])
>>> [i.name for i in m.graph.input], [o.name for o in m.graph.output]
(['label'], ['label__1'])
"""

from __future__ import annotations

from collections.abc import Sequence

from onnx import GraphProto, ModelProto, TensorProto, helper


def _names(graph: GraphProto) -> set[str]:
    names = {v.name for v in (*graph.input, *graph.output, *graph.value_info)}
    names |= {t.name for t in graph.initializer}
    for node in graph.node:
        names.update(node.input)
        names.update(node.output)
    return names


def rename_tensor(graph: GraphProto, old: str, new: str) -> None:
    """Rename one tensor everywhere in the graph (subgraphs of If/Loop/Scan included)."""
    for value in (*graph.input, *graph.output, *graph.value_info):
        if value.name == old:
            value.name = new
    for tensor in graph.initializer:
        if tensor.name == old:
            tensor.name = new
    for node in graph.node:
        for i, name in enumerate(node.input):
            if name == old:
                node.input[i] = new
        for i, name in enumerate(node.output):
            if name == old:
                node.output[i] = new
        for attribute in node.attribute:
            if attribute.g.node:
                rename_tensor(attribute.g, old, new)
            for sub in attribute.graphs:
                rename_tensor(sub, old, new)


def _fresh(name: str, taken: set[str]) -> str:
    n = 1
    while f"{name}__{n}" in taken:
        n += 1
    return f"{name}__{n}"


def restore_input_names(model: ModelProto, names: Sequence[str]) -> None:
    """Give the graph's first len(names) inputs these names, in order, in place."""
    graph = model.graph
    inputs = [graph.input[i].name for i in range(len(names))]
    if len(graph.input) < len(names):
        raise ValueError(f"the graph has {len(graph.input)} inputs, {len(names)} names given")
    for current, wanted in zip(inputs, names, strict=True):
        if current == wanted:
            continue
        taken = _names(graph)
        if wanted in taken:  # an internal tensor (or output) already has the column's name
            rename_tensor(graph, wanted, _fresh(wanted, taken | set(names)))
        rename_tensor(graph, current, wanted)


def features_as_inputs(model: ModelProto, names: Sequence[str]) -> None:
    """Give a model that takes one float tensor ``[N, len(names)]`` one ``[N, 1]`` input per
    column instead, concatenated in order into the tensor it expects; in place.

    Models converted from NumPy-fitted estimators (XGBoost, LightGBM, scikit-learn without
    column names) take one matrix; the scorer feeds one input per feature.
    """
    graph = model.graph
    matrix = graph.input[0]
    elem = matrix.type.tensor_type.elem_type
    if len(graph.input) != 1 or elem != TensorProto.FLOAT:
        raise ValueError("expected one float tensor input")
    dims = matrix.type.tensor_type.shape.dim
    width = dims[1].dim_value if len(dims) == 2 and dims[1].HasField("dim_value") else None
    if width is not None and width != len(names):
        raise ValueError(f"the model's input has {width} columns, the data set {len(names)}")
    taken = _names(graph)
    for name in names:
        if name in taken:
            rename_tensor(graph, name, _fresh(name, taken | set(names)))
    columns = [helper.make_tensor_value_info(n, TensorProto.FLOAT, [None, 1]) for n in names]
    concat = helper.make_node("Concat", list(names), [matrix.name], axis=1, name="columns")
    del graph.input[:]
    graph.input.extend(columns)
    graph.node.insert(0, concat)


def plain_probabilities(model: ModelProto) -> list[str] | None:
    """Replace a ZipMap (probabilities as a list of {class: p} maps) by the float matrix it
    wraps, in place; the class labels it named, in column order, or None without a ZipMap."""
    graph = model.graph
    for node in graph.node:
        if node.op_type != "ZipMap":
            continue
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        labels = attrs.get("classlabels_strings") or attrs.get("classlabels_int64s") or []
        classes = [v.decode() if isinstance(v, bytes) else str(v) for v in labels]
        matrix, mapped = node.input[0], node.output[0]
        graph.node.remove(node)
        for i, out in enumerate(graph.output):
            if out.name == mapped:
                graph.output.remove(out)
                graph.output.insert(
                    i, helper.make_tensor_value_info(matrix, TensorProto.FLOAT, [None, None])
                )
        return classes
    return None


def forget_output_shapes(model: ModelProto) -> None:
    """Drop the outputs' declared shapes, in place: onnxmltools declares LightGBM's label as
    ``[1]`` whatever the batch, and onnxruntime warns on every run that the shape differs."""
    for out in model.graph.output:
        out.type.tensor_type.ClearField("shape")
