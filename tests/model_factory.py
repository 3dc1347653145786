"""Real trained models for tests: built once per session, signed with a throwaway key."""

from __future__ import annotations

import copy
import functools
import time
from pathlib import Path
from typing import Any

from services.common import serde, signing
from services.trainer.dataset import load_dataset
from services.trainer.model_build import TrainOptions, build_model


@functools.cache
def credit_content(
    version: int = 1, estimator: str = "hgb", rows: int = 3000, seed: int = 0
) -> dict[str, Any]:
    """An unsigned ModelContent trained on a small builtin:credit table."""
    ds = load_dataset(f"builtin:credit?rows={rows}&seed={seed + 1}")
    opts = TrainOptions(estimator=estimator, search="grid", trials=1, seed=seed, cv_folds=2)
    return build_model(ds, name="credit", version=version, parent_id=None, options=opts).content


def keypair(directory: Path) -> signing.SigningKey:
    """A fresh key pair in `directory` (public key trusted by services pointed there)."""
    key_id = signing.generate_keypair(directory)
    return signing.load_private_key(directory / f"{key_id}.key")


def published(content: dict[str, Any], key: signing.SigningKey, **changes: Any) -> dict[str, Any]:
    """A signed ModelPublished record for `content` (with optional field changes, then signed)."""
    body = copy.deepcopy({**content, **changes})  # cached contents must never be mutated
    if "onnx" in changes:
        from services.trainer.model_content import model_id

        body["model_id"] = model_id(body["onnx"])
    payload = serde.canonical_bytes("ModelContent", body)
    return {
        "content": body,
        "key_id": signing.key_id_of(key.public_key()),
        "signature": signing.sign(key, payload),
    }


def deployment(
    content: dict[str, Any],
    revision: int = 1,
    name: str = "credit",
    challengers: tuple[dict[str, Any], ...] = (),
    mode: str = "shadow",
    humility: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """A Deployment record serving `content` as champion."""

    def ref(c: dict[str, Any]) -> dict[str, Any]:
        return {"model_name": c["name"], "model_id": c["model_id"], "version": c["version"]}

    return {
        "name": name,
        "revision": revision,
        "updated_at": int(time.time() * 1000),
        "updated_by": "tests",
        "reason": "test deployment",
        "champion": ref(content),
        "challengers": [
            {"model": ref(c), "weight": w}
            for c, w in ((ch["content"], ch["weight"]) for ch in challengers)
        ],
        "mode": mode,
        "humility": humility or [],
        "thresholds": [],
        "policy": {"auto_approve": True, "retrain_after_windows": 3, "review_topic": None},
        "window_seconds": 60,
    }


def runtime_bomb(kind: str, size: int = 100_000) -> bytes:
    """A tiny ONNX graph (input x: float [None, 1]) that stores no large tensor but builds a
    size x size float tensor when run: `constant_of_shape`, `expand` or `tile`."""
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    shape = numpy_helper.from_array(np.array([size, size], np.int64), "shape")
    if kind == "constant_of_shape":
        one = numpy_helper.from_array(np.ones(1, np.float32))
        nodes = [
            helper.make_node("ConstantOfShape", ["shape"], ["big"], value=one),
            helper.make_node("Add", ["x", "big"], ["y"]),
        ]
    elif kind == "expand":
        nodes = [helper.make_node("Expand", ["x", "shape"], ["y"])]
    elif kind == "tile":
        nodes = [helper.make_node("Tile", ["x", "shape"], ["y"])]
    else:
        raise ValueError(f"unknown bomb kind {kind!r}")
    graph = helper.make_graph(
        nodes,
        "bomb",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        initializer=[shape],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=9)
    return model.SerializeToString()
