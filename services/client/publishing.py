"""Publish a model from a notebook as `streamops models import` does.

>>> from streamops import publish_model
>>> publish_model(pipeline, reference=holdout_df, label="churned", name="churn")  # doctest: +SKIP
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from services.trainer.summary import TrainingSummary


def publish_model(
    estimator: Any,
    *,
    reference: Any,
    label: str,
    name: str,
    task: str | None = None,
    categorical: Sequence[str] = (),
    drop: Sequence[str] = (),
    prefix: str | None = None,
    keys_dir: str | None = None,
    environ: Mapping[str, str] | None = None,
    progress: Any = print,
) -> TrainingSummary:
    """Publish a fitted scikit-learn estimator as the next signed version of ``name``.

    ``reference`` is a pandas DataFrame (or a CSV/JSON lines/Parquet path) of labelled rows the
    model did not train on, with the ``label`` column. The estimator travels as a skops file,
    never a pickle; its types are trusted because it is this session's own object. Settings
    come from ``STREAMOPS_*`` as for the CLI (``prefix`` and ``keys_dir`` override them).
    Raises ImportRefused or DataValidationError, with nothing published, when it cannot serve.
    """
    # The trainer (scikit-learn, ONNX) loads here, so `import streamops` stays light.
    import skops.io as sio

    from services.common.settings import load_settings
    from services.trainer.app import ImportJob, import_once
    from services.trainer.config import TrainerSettings
    from services.trainer.dataset import ColumnChoices

    env = dict(os.environ if environ is None else environ)
    settings = load_settings(
        TrainerSettings, "trainer", env, {"topic_prefix": prefix, "keys_dir": keys_dir}
    )
    with tempfile.TemporaryDirectory(prefix="streamops-publish-") as tmp:
        model_file = Path(tmp) / f"{name}.skops"
        sio.dump(estimator, model_file)
        if isinstance(reference, str | os.PathLike):
            data = str(reference)
        else:
            data = str(Path(tmp) / "reference.parquet")
            reference.to_parquet(data, index=False)
        job = ImportJob(
            model_name=name,
            model_file=str(model_file),
            reference=data,
            label=label,
            choices=ColumnChoices(task, tuple(categorical), tuple(drop)),
            trust=tuple(sio.get_untrusted_types(file=model_file)),
        )
        return import_once(settings, job, lambda line: progress(f"publish_model: {line}"))
