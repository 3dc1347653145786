"""`streamops models describe`: publish a model that runs in your own service, described by its
training data (no model file), as the next signed version; deploy it with `external: true`.

Exit codes: 0 published, 1 refused (data that cannot describe a model; the message says why and
nothing is published), 2 bad arguments.
"""

from __future__ import annotations

import argparse

from services.cli.import_cmd import add_publish_arguments, add_table_arguments, choices
from services.cli.train_cmd import publish_and_report
from services.common.errors import ConfigError
from services.common.settings import load_settings
from services.trainer.app import DescribeJob, describe_once
from services.trainer.config import TrainerSettings
from services.trainer.validation import DataValidationError


def add_describe_parser(actions: argparse._SubParsersAction) -> None:
    """Register `models describe` under `models`."""
    p = actions.add_parser(
        "describe",
        help="publish a model that runs in your own service, from its training data",
        description="Describe a model that runs in your own service (an external deployment: "
        "your service reports its predictions) from the data it was trained on: input "
        "signature, classes and the monitoring baseline, with no model file. Signed and "
        "published as the next version of NAME. The prediction baseline is your model's "
        "outputs on DATA (--prediction-column), else the label column's distribution; "
        "feature importances are uniform.",
    )
    p.add_argument("--name", required=True, help="model name (the models topic's key)")
    p.add_argument(
        "--data", required=True, metavar="DATA", help="training rows: CSV, JSON lines or Parquet"
    )
    p.add_argument("--label", help="label column of DATA (default: label, target, approved)")
    p.add_argument(
        "--prediction-column",
        metavar="COLUMN",
        help="column of DATA with your model's prediction per row (a class, for two classes "
        "also the second class's probability, or a value): the prediction baseline and metrics",
    )
    add_table_arguments(p)
    add_publish_arguments(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace, environ: dict[str, str]) -> int:
    """Describe and publish; progress on stderr, the summary on stdout."""
    if not args.name.strip():
        raise ConfigError("--name must not be empty")
    if args.prediction_column is not None and not args.prediction_column.strip():
        raise ConfigError("--prediction-column must not be empty")
    job = DescribeJob(
        model_name=args.name,
        data=args.data,
        label=args.label,
        prediction_column=args.prediction_column,
        choices=choices(args),
    )
    overrides = {"topic_prefix": args.prefix, "keys_dir": args.keys_dir}
    settings = load_settings(TrainerSettings, "trainer", environ, overrides)
    return publish_and_report(
        "describe", lambda say: describe_once(settings, job, say), (DataValidationError,)
    )
