"""Read a model trained elsewhere into the ONNX the scorer serves: skops, ONNX, XGBoost, LightGBM.

Pickles are never loaded. A ``.skops`` file is opened with skops' secure loader, which
reconstructs only types it trusts: the scikit-learn, NumPy and SciPy types skops trusts by
default, ``SAFE_TYPES`` below, and whatever the user names with ``--trust``; any other type is
refused before anything is built, with the list of types to review. XGBoost models come as the
booster's own JSON or UBJSON files (``save_model``), LightGBM models as its text format. Every
source ends as an ONNX graph with one ``[N, 1]`` input per column and plain outputs
(``onnx_graph``), plus, where the original model can run here, a predictor to check the
conversion against.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from services.common.errors import StreamopsError
from services.trainer.dataset import Dataset, FeatureSpec
from services.trainer.onnx_graph import (
    features_as_inputs,
    forget_output_shapes,
    plain_probabilities,
    restore_input_names,
)

SKOPS = ".skops"
ONNX = ".onnx"
XGBOOST = (".json", ".ubj")
LIGHTGBM = ".txt"  # LightGBM's own text format (Booster.save_model)
# skops lists numpy.dtype as untrusted, yet it is a plain descriptor that runs no code; every
# scikit-learn pipeline holds one.
SAFE_TYPES = ("numpy.dtype",)


class ImportRefused(StreamopsError):
    """The model file cannot be imported; the message says why and what to do."""


@dataclasses.dataclass(frozen=True)
class Source:
    """A model read from a file: its ONNX, inputs, task, classes and how to run the original."""

    fmt: str
    onnx: bytes
    specs: tuple[FeatureSpec, ...]
    task: str
    classes: list[str]
    description: str
    params: dict[str, str]
    original: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray | None]] | None


def file_sha256(path: Path) -> str:
    """sha256 hex of a file's bytes."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _specs_named(ds: Dataset, names: Sequence[str], what: str) -> tuple[FeatureSpec, ...]:
    by_name = {s.name: s for s in ds.feature_specs}
    missing = [n for n in names if n not in by_name]
    if missing:
        raise ImportRefused(
            f"{what} needs column {', '.join(map(repr, missing))}, which the reference data "
            f"does not have as a feature (its features: {', '.join(by_name) or 'none'})"
        )
    return tuple(by_name[n] for n in names)


def _json_params(estimator: Any) -> dict[str, str]:
    out = {}
    for key, value in sorted(estimator.get_params(deep=False).items()):
        try:
            out[key] = json.dumps(value, sort_keys=True)
        except TypeError:
            out[key] = json.dumps(type(value).__name__)
    return out


# -- scikit-learn through skops ---------------------------------------------------------------


def untrusted_types(path: Path) -> list[str]:
    """Types in a .skops file that would have to be trusted to load it."""
    import skops.io as sio

    try:
        return [t for t in sio.get_untrusted_types(file=path) if t not in SAFE_TYPES]
    except Exception as exc:  # a corrupt zip or schema raises anything
        raise ImportRefused(f"{path}: not a readable .skops file: {exc}") from None


def _load_skops(path: Path, trust: Sequence[str]) -> Any:
    import skops.io as sio

    untrusted = untrusted_types(path)
    refused = [t for t in untrusted if t not in trust]
    if refused:
        raise ImportRefused(
            f"{path.name} holds types that are not trusted: {', '.join(refused)}. Loading them "
            f"can run their code; if you know and trust them, name them: --trust "
            f"{','.join(refused)}"
        )
    try:
        return sio.load(path, trusted=[*SAFE_TYPES, *untrusted])
    except Exception as exc:
        raise ImportRefused(f"{path}: skops could not load it: {exc}") from None


def _frame(x: np.ndarray, specs: Sequence[FeatureSpec]) -> Any:
    import pandas as pd

    from services.common.onnx_inputs import MISSING_CATEGORY

    data = {}
    for i, spec in enumerate(specs):
        column = x[:, i]
        if spec.kind == "numeric":
            data[spec.name] = column.astype(float)
        else:
            data[spec.name] = [None if v == MISSING_CATEGORY else v for v in column]
    return pd.DataFrame(data)


def _sklearn(path: Path, ds: Dataset, trust: Sequence[str]) -> Source:
    from skl2onnx import convert_sklearn, get_latest_tested_opset_version
    from skl2onnx.common.data_types import FloatTensorType, StringTensorType
    from sklearn.base import is_classifier, is_regressor

    model = _load_skops(path, trust)
    if not hasattr(model, "predict"):
        raise ImportRefused(f"{path.name} holds a {type(model).__name__}, not a fitted model")
    if is_classifier(model):
        task = "classification"
    elif is_regressor(model):
        task = "regression"
    else:
        raise ImportRefused(f"{type(model).__name__} is neither a classifier nor a regressor")
    named = getattr(model, "feature_names_in_", None)
    names = [str(n) for n in named] if named is not None else [s.name for s in ds.feature_specs]
    specs = _specs_named(ds, names, type(model).__name__)
    expected = getattr(model, "n_features_in_", len(specs))
    if expected != len(specs):
        raise ImportRefused(
            f"the model takes {expected} columns, the reference data has {len(specs)} "
            "features; drop the extra columns with --drop"
        )
    final = model.steps[-1][1] if hasattr(model, "steps") else model
    initial = [
        (s.name, FloatTensorType([None, 1]) if s.kind == "numeric" else StringTensorType([None, 1]))
        for s in specs
    ]
    try:
        graph = convert_sklearn(
            model,
            initial_types=initial,
            options={id(final): {"zipmap": False}} if task == "classification" else None,
            target_opset=get_latest_tested_opset_version(),
        )
    except Exception as exc:  # skl2onnx raises many unrelated types
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ImportRefused(
            f"skl2onnx cannot convert this {type(model).__name__}: {first} Every step needs an "
            "ONNX converter (scikit-learn's own estimators have one)"
        ) from None
    restore_input_names(graph, names)

    def original(x: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        feed = _frame(x, specs) if named is not None else x
        proba = model.predict_proba(feed) if task == "classification" else None
        return np.asarray(model.predict(feed)), proba

    steps = [type(s).__name__ for _, s in getattr(model, "steps", [])] or [type(model).__name__]
    return Source(
        "skops",
        graph.SerializeToString(),
        specs,
        task,
        [str(c) for c in getattr(model, "classes_", [])] if task == "classification" else [],
        "+".join(steps),
        _json_params(final),
        original,
    )


# -- ONNX -------------------------------------------------------------------------------------


def _onnx(path: Path, ds: Dataset) -> Source:
    try:
        graph = onnx.load_from_string(path.read_bytes())
    except Exception as exc:  # protobuf's DecodeError and friends
        raise ImportRefused(f"{path}: not an ONNX model: {exc}") from None
    classes = plain_probabilities(graph)
    stored = {t.name for t in graph.graph.initializer}
    inputs = [i.name for i in graph.graph.input if i.name not in stored]
    features = [s.name for s in ds.feature_specs]
    if set(inputs) <= set(features) and inputs:
        specs = _specs_named(ds, inputs, "the ONNX model")
    elif len(inputs) == 1:
        specs = ds.feature_specs
        if any(s.kind != "numeric" for s in specs):
            raise ImportRefused(
                "the ONNX model takes one float matrix, but the reference data has text "
                f"columns ({', '.join(s.name for s in specs if s.kind != 'numeric')}); encode "
                "them in the model or drop them"
            )
        try:
            features_as_inputs(graph, features)
        except ValueError as exc:
            raise ImportRefused(f"the ONNX model's input does not fit the data: {exc}") from None
    else:
        raise ImportRefused(
            f"the ONNX model's inputs ({', '.join(inputs)}) are not columns of the reference "
            f"data ({', '.join(features)}); name each input after its column, or take one matrix"
        )
    task = "classification" if len(graph.graph.output) > 1 else "regression"
    if task == "classification" and not classes:
        classes = [str(c) for c in sorted({str(v) for v in ds.labels if v is not None})]
    return Source(
        "onnx", graph.SerializeToString(), tuple(specs), task, classes or [], "onnx", {}, None
    )


# -- XGBoost ----------------------------------------------------------------------------------


def _xgboost(path: Path, ds: Dataset) -> Source:
    try:
        import xgboost
    except ImportError:
        raise ImportRefused("importing XGBoost models needs xgboost: pip install xgboost") from None
    from onnxmltools import convert_xgboost
    from onnxmltools.convert.common.data_types import FloatTensorType

    booster = xgboost.Booster()
    try:
        booster.load_model(str(path))
    except xgboost.core.XGBoostError as exc:
        raise ImportRefused(f"{path}: not an XGBoost model file: {exc}") from None
    objective = json.loads(booster.save_config())["learner"]["objective"]["name"]
    task = "classification" if objective.startswith(("binary:", "multi:")) else "regression"
    model = xgboost.XGBClassifier() if task == "classification" else xgboost.XGBRegressor()
    model.load_model(str(path))
    width = booster.num_features()
    specs = _numeric_specs(ds, width, "XGBoost")
    try:
        graph = convert_xgboost(model, initial_types=[("input", FloatTensorType([None, width]))])
    except Exception as exc:  # onnxmltools raises many unrelated types
        raise ImportRefused(f"onnxmltools cannot convert this XGBoost model: {exc}") from None
    classes = plain_probabilities(graph)
    features_as_inputs(graph, [s.name for s in specs])
    if task == "classification" and not classes:
        classes = [str(c) for c in model.classes_]

    def original(x: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        numbers = _as_served(x)
        proba = model.predict_proba(numbers) if task == "classification" else None
        return np.asarray(model.predict(numbers)), proba

    params = {"objective": json.dumps(objective), "trees": json.dumps(booster.num_boosted_rounds())}
    return Source(
        "xgboost",
        graph.SerializeToString(),
        tuple(specs),
        task,
        classes or [],
        f"XGBoost {objective}",
        params,
        original,
    )


# -- LightGBM --------------------------------------------------------------------------------


def _as_served(x: np.ndarray) -> np.ndarray:
    """Numbers as the scorer feeds them (float32 inputs), so a row on a split threshold takes
    the same branch in the original as in the ONNX graph."""
    return x.astype(np.float32).astype(float)


def _numeric_specs(ds: Dataset, width: int, what: str) -> tuple[FeatureSpec, ...]:
    specs = ds.feature_specs
    if any(s.kind != "numeric" for s in specs):
        text = ", ".join(s.name for s in specs if s.kind != "numeric")
        raise ImportRefused(f"{what} models take numbers only; text columns: {text}")
    if width != len(specs):
        raise ImportRefused(
            f"the model takes {width} columns, the reference data has {len(specs)} features; "
            "drop the extra columns with --drop"
        )
    return specs


def _lightgbm(path: Path, ds: Dataset) -> Source:
    try:
        import lightgbm
    except ImportError:
        raise ImportRefused(
            "importing LightGBM models needs lightgbm: pip install lightgbm"
        ) from None
    from onnxmltools import convert_lightgbm
    from onnxmltools.convert.common.data_types import FloatTensorType

    if not path.read_bytes()[:4] == b"tree":
        raise ImportRefused(f"{path}: not a LightGBM model file (Booster.save_model writes one)")
    try:
        booster = lightgbm.Booster(model_file=str(path))
    except lightgbm.basic.LightGBMError as exc:
        raise ImportRefused(f"{path}: LightGBM cannot read it: {exc}") from None
    objective = str(booster.dump_model()["objective"]).split()[0]
    task = (
        "classification" if objective in ("binary", "multiclass", "multiclassova") else "regression"
    )
    specs = _numeric_specs(ds, booster.num_feature(), "LightGBM")
    try:
        graph = convert_lightgbm(
            booster, initial_types=[("input", FloatTensorType([None, len(specs)]))], zipmap=False
        )
    except Exception as exc:  # onnxmltools raises many unrelated types
        raise ImportRefused(f"onnxmltools cannot convert this LightGBM model: {exc}") from None
    plain_probabilities(graph)
    forget_output_shapes(graph)
    features_as_inputs(graph, [s.name for s in specs])
    width = booster.num_model_per_iteration()
    classes = [str(c) for c in range(max(2, width))] if task == "classification" else []

    def original(x: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        raw = np.asarray(booster.predict(_as_served(x)))
        if task == "regression":
            return raw, None
        proba = raw.reshape(len(x), -1)
        if proba.shape[1] == 1:
            proba = np.column_stack([1 - proba[:, 0], proba[:, 0]])
        return np.array(classes, dtype=object)[proba.argmax(axis=1)], proba

    params = {"objective": json.dumps(objective), "trees": json.dumps(booster.num_trees())}
    return Source("lightgbm", graph.SerializeToString(), specs, task, classes,
                  f"LightGBM {objective}", params, original)  # fmt: skip


def read_source(path: Path, ds: Dataset, trust: Sequence[str] = ()) -> Source:
    """The model in ``path`` as ONNX fitting the reference data's columns; refuses clearly."""
    if not path.is_file():
        raise ImportRefused(f"no model file at {str(path)!r}")
    suffix = path.suffix.lower()
    if suffix == SKOPS:
        return _sklearn(path, ds, trust)
    if suffix == ONNX:
        return _onnx(path, ds)
    if suffix in XGBOOST:
        return _xgboost(path, ds)
    if suffix == LIGHTGBM:
        return _lightgbm(path, ds)
    raise ImportRefused(
        f"{path.name}: unknown model format {suffix or '(no suffix)'!r}; give a scikit-learn "
        "model saved with skops (.skops), an ONNX file (.onnx) or an XGBoost model saved with "
        "save_model (.json, .ubj) or a LightGBM one (.txt). Pickles are never loaded."
    )
