"""`streamops train` (one model, published) and `streamops trainer run` (the retrain consumer).

Exit codes of `train`: 0 published, 1 refused (data validation or ONNX parity; the message says
why) or not delivered, 2 bad arguments or configuration (including a missing signing key).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from services.common.errors import ConfigError
from services.common.settings import load_settings
from services.trainer import __main__ as trainer_main
from services.trainer.app import TrainJob, train_once
from services.trainer.config import TrainerSettings
from services.trainer.dataset import TASKS, ColumnChoices
from services.trainer.onnx_export import ExportError
from services.trainer.search_space import read_search_space
from services.trainer.summary import TrainingSummary, render_summary
from services.trainer.training import ESTIMATORS, SEARCHES
from services.trainer.validation import DataValidationError


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register `train` and `trainer run`."""
    p = sub.add_parser("train", help="train, sign and publish one model")
    src = p.add_argument_group("data (one of)")
    src.add_argument(
        "--dataset",
        help="CSV, JSON lines (.jsonl) or Parquet file, or builtin:credit[?rows=..&seed=..]",
    )
    src.add_argument(
        "--from-stream",
        action="store_true",
        help="join the last N labelled events of --deployment from events and actuals",
    )
    src.add_argument("--deployment", help="deployment whose events to train on (--from-stream)")
    src.add_argument("--last", type=int, help="how many labelled events (--from-stream)")
    p.add_argument("--model-name", required=True, help="model name (the models topic's key)")
    p.add_argument("--estimator", choices=ESTIMATORS, help="default: setting, hgb")
    p.add_argument("--search", choices=SEARCHES, help="hyper-parameter search (default grid)")
    p.add_argument("--trials", type=int, help="random search trials (default 4)")
    p.add_argument(
        "--search-space",
        metavar="FILE.yaml",
        help="parameters to search: name: [values], or name: {loguniform|randint: [low, high]}",
    )
    p.add_argument("--label", help="label column of a data file (default: label, target, approved)")
    p.add_argument("--task", choices=TASKS, help="default: inferred from the label column")
    p.add_argument(
        "--categorical", metavar="A,B", help="columns to treat as categories (numbers included)"
    )
    p.add_argument("--drop", metavar="C,D", help="columns that are not features")
    p.add_argument("--seed", type=int, help="split, CV and estimator seed (default 0)")
    p.add_argument("--prefix", help="topic prefix (default: STREAMOPS_TOPIC_PREFIX or streamops.)")
    p.add_argument("--keys-dir", help="signing key directory (default: <var_dir>/keys)")
    p.set_defaults(func=run)

    trainer = sub.add_parser("trainer", help="the long-running trainer service")
    actions = trainer.add_subparsers(dest="trainer_action", metavar="ACTION", required=True)
    serve = actions.add_parser(
        "run",
        help="consume retrain requests until stopped",
        parents=[trainer_main.build_parser(add_help=False)],
    )
    serve.set_defaults(func=trainer_main.serve)


def job_from_args(args: argparse.Namespace) -> TrainJob:
    """The TrainJob the flags ask for; ConfigError (exit 2) for inconsistent flags."""
    if bool(args.dataset) == bool(args.from_stream):
        raise ConfigError("give exactly one of --dataset or --from-stream")
    if args.from_stream:
        if not args.deployment or args.last is None:
            raise ConfigError("--from-stream needs --deployment D and --last N")
        if args.last < 1:
            raise ConfigError(f"--last must be at least 1, got {args.last}")
    elif args.deployment or args.last is not None:
        raise ConfigError("--deployment and --last go with --from-stream")
    if args.trials is not None and args.trials < 1:
        raise ConfigError(f"--trials must be at least 1, got {args.trials}")
    if not args.model_name.strip():
        raise ConfigError("--model-name must not be empty")
    if args.from_stream and (args.task or args.categorical or args.drop):
        raise ConfigError("--task, --categorical and --drop go with --dataset (a retrain keeps "
                          "its champion's columns)")  # fmt: skip
    return TrainJob(
        model_name=args.model_name,
        dataset=args.dataset,
        label=args.label,
        deployment=args.deployment,
        last_n=args.last,
        choices=ColumnChoices(args.task, column_list(args.categorical), column_list(args.drop)),
        space=read_search_space(Path(args.search_space)) if args.search_space else None,
    )


def column_list(text: str | None) -> tuple[str, ...]:
    """Column names from "A,B" (spaces around commas ignored; a name may contain spaces)."""
    names = tuple(c.strip() for c in (text or "").split(",") if c.strip())
    if text is not None and not names:
        raise ConfigError("a column list needs at least one name, e.g. --drop id,notes")
    return names


def settings_from_args(args: argparse.Namespace, environ: dict[str, str]) -> TrainerSettings:
    """Trainer settings: defaults, STREAMOPS_* and STREAMOPS_TRAINER_*, then these flags."""
    overrides = {
        "topic_prefix": args.prefix,
        "keys_dir": args.keys_dir,
        "estimator": args.estimator,
        "search": args.search,
        "trials": args.trials,
        "seed": args.seed,
    }
    return load_settings(TrainerSettings, "trainer", environ, overrides)


def run(args: argparse.Namespace, environ: dict[str, str]) -> int:
    """Train and publish; print progress on stderr and the summary on stdout."""
    job = job_from_args(args)
    settings = settings_from_args(args, environ)
    return publish_and_report(
        "train", lambda say: train_once(settings, job, say), (DataValidationError, ExportError)
    )


def publish_and_report(
    verb: str,
    publish: Callable[[Callable[[str], None]], TrainingSummary],
    refusals: tuple[type[Exception], ...],
) -> int:
    """Run a publishing command: progress on stderr, the summary on stdout; exit 1 and say
    nothing was published when it is refused."""

    def say(line: str) -> None:
        print(f"{verb}: {line}", file=sys.stderr, flush=True)

    try:
        summary = publish(say)
    except refusals as exc:
        print(f"streamops: refused, nothing published: {exc}", file=sys.stderr)
        return 1
    print(render_summary(summary))
    return 0
