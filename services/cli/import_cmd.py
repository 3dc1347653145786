"""`streamops models import`: publish a model trained elsewhere as a new signed version.

Exit codes: 0 published, 1 refused (untrusted types, a conversion that disagrees, reference
data that does not fit; the message says why and nothing is published), 2 bad arguments.
"""

from __future__ import annotations

import argparse

from services.cli.train_cmd import column_list, publish_and_report
from services.common.errors import ConfigError
from services.common.settings import load_settings
from services.trainer.app import ImportJob, import_once
from services.trainer.config import TrainerSettings
from services.trainer.dataset import TASKS, ColumnChoices
from services.trainer.model_sources import ImportRefused
from services.trainer.onnx_export import MAX_PROB_DIFF
from services.trainer.validation import DataValidationError


def add_table_arguments(p: argparse.ArgumentParser) -> None:
    """How to read DATA's columns (`--task`, `--categorical`, `--drop`): import and describe."""
    p.add_argument("--task", choices=TASKS, help="how to read DATA's label (default: inferred)")
    p.add_argument("--categorical", metavar="A,B", help="columns of DATA that are categories")
    p.add_argument("--drop", metavar="C,D", help="columns of DATA that are not model inputs")


def add_publish_arguments(p: argparse.ArgumentParser) -> None:
    """Where a signed model goes (`--prefix`, `--keys-dir`): import and describe."""
    p.add_argument("--prefix", help="topic prefix (default: STREAMOPS_TOPIC_PREFIX or streamops.)")
    p.add_argument("--keys-dir", help="signing key directory (default: <var_dir>/keys)")


def choices(args: argparse.Namespace) -> ColumnChoices:
    """The column choices the flags of `add_table_arguments` give."""
    return ColumnChoices(args.task, column_list(args.categorical), column_list(args.drop))


def add_import_parser(actions: argparse._SubParsersAction) -> None:
    """Register `models import` under `models`."""
    p = actions.add_parser(
        "import",
        help="publish a model trained elsewhere (.skops, .onnx, XGBoost .json/.ubj)",
        description="Convert a model trained elsewhere to ONNX, measure it on reference data "
        "(metrics, monitoring baseline, importances), sign it and publish it as the next "
        "version of NAME. Pickles are never loaded.",
    )
    p.add_argument("--name", required=True, help="model name (the models topic's key)")
    p.add_argument("--model", required=True, metavar="FILE", help=".skops, .onnx, .json or .ubj")
    p.add_argument(
        "--reference",
        required=True,
        metavar="DATA",
        help="labelled rows the model did not train on: CSV, JSON lines or Parquet",
    )
    p.add_argument("--label", help="label column of DATA (default: label, target, approved)")
    p.add_argument("--trust", metavar="T1,T2", help="types of a .skops file you trust to load")
    add_table_arguments(p)
    p.add_argument(
        "--max-gap",
        type=float,
        default=MAX_PROB_DIFF,
        help="largest probability (or value) gap allowed between ONNX and the original "
        f"(default {MAX_PROB_DIFF:g}; the measured gap is recorded in the lineage)",
    )
    p.add_argument("--seed", type=int, help="seed of the permutation importances (default 0)")
    add_publish_arguments(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace, environ: dict[str, str]) -> int:
    """Import and publish; progress on stderr, the summary on stdout."""
    if not args.name.strip():
        raise ConfigError("--name must not be empty")
    if not 0 <= args.max_gap < 1:
        raise ConfigError(f"--max-gap must be in [0, 1), got {args.max_gap}")
    job = ImportJob(
        model_name=args.name,
        model_file=args.model,
        reference=args.reference,
        label=args.label,
        choices=choices(args),
        trust=column_list(args.trust),
        max_gap=args.max_gap,
    )
    overrides = {"topic_prefix": args.prefix, "keys_dir": args.keys_dir, "seed": args.seed}
    settings = load_settings(TrainerSettings, "trainer", environ, overrides)
    return publish_and_report(
        "import", lambda say: import_once(settings, job, say), (ImportRefused, DataValidationError)
    )
