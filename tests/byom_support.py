"""Models trained "elsewhere" for the import tests: a scikit-learn Pipeline saved with skops, an
ONNX file, an XGBoost and a LightGBM model, all on breast-cancer columns with dashed names and a
text column, plus the reference rows (the last 30%) they never trained on."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import skops.io as sio
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_breast_cancer
from sklearn.ensemble import RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

NUMERIC = ["mean-radius", "mean texture", "mean.perimeter", "Mean_Area", "smoothness-µ"]
SPLIT = 0.7


class Doubler(BaseEstimator, TransformerMixin):
    """A user's own transformer: skops cannot know it, so it is untrusted."""

    def fit(self, x, y=None):
        return self

    def transform(self, x):
        return np.asarray(x, dtype=float) * 2


@dataclasses.dataclass(frozen=True)
class Files:
    """The files written and the frames they came from."""

    skops: Path
    onnx: Path
    xgboost: Path
    lightgbm: Path
    untrusted: Path
    reference: Path  # all columns + label
    reference_numeric: Path  # numeric columns + label (for the one-matrix models)
    x_reference: pd.DataFrame
    y_reference: np.ndarray


def write_models(folder: Path) -> Files:
    """Train the three models on the first 70% and write them with the reference rows."""
    import lightgbm
    import xgboost
    from skl2onnx import to_onnx

    data = load_breast_cancer(as_frame=True)
    x = data.data.iloc[:, : len(NUMERIC)].copy()
    x.columns = NUMERIC
    x["grade"] = np.where(x["mean-radius"] > 14, "high", "low")
    y = data.target.to_numpy()
    cut = int(len(x) * SPLIT)
    x_train, y_train = x.iloc[:cut], y[:cut]
    numeric = Pipeline([("impute", SimpleImputer()), ("scale", StandardScaler())])
    prep = ColumnTransformer(
        [("num", numeric, NUMERIC), ("cat", OneHotEncoder(handle_unknown="ignore"), ["grade"])]
    )
    pipeline = Pipeline([("prep", prep), ("model", LogisticRegression(max_iter=2000))])
    pipeline.fit(x_train, y_train)
    folder.mkdir(parents=True, exist_ok=True)
    files = Files(
        skops=folder / "pipeline.skops",
        onnx=folder / "forest.onnx",
        xgboost=folder / "booster.json",
        lightgbm=folder / "lightgbm.txt",
        untrusted=folder / "custom.skops",
        reference=folder / "reference.csv",
        reference_numeric=folder / "reference-numeric.csv",
        x_reference=x.iloc[cut:],
        y_reference=y[cut:],
    )
    sio.dump(pipeline, files.skops)
    custom = Pipeline([("double", Doubler()), ("model", LogisticRegression(max_iter=2000))])
    sio.dump(custom.fit(x_train[NUMERIC], y_train), files.untrusted)
    matrix = x_train[NUMERIC].to_numpy(np.float32)
    forest = RandomForestClassifier(n_estimators=20, max_depth=6, random_state=0)
    files.onnx.write_bytes(to_onnx(forest.fit(matrix, y_train), matrix[:1]).SerializeToString())
    booster = xgboost.XGBClassifier(n_estimators=30, max_depth=3, random_state=0)
    booster.fit(matrix, y_train).save_model(files.xgboost)
    gbm = lightgbm.LGBMClassifier(n_estimators=30, num_leaves=8, random_state=0, verbose=-1)
    gbm.fit(matrix, y_train).booster_.save_model(str(files.lightgbm))
    reference = files.x_reference.assign(label=files.y_reference)
    reference.to_csv(files.reference, index=False)
    reference.drop(columns=["grade"]).to_csv(files.reference_numeric, index=False)
    return files
