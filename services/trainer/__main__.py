"""`python -m services.trainer`: consume retrain requests until SIGTERM.

`streamops train serve` runs the same parser and `serve`. The modules that pull in
scikit-learn are imported inside the functions, so that `main` catches SIGTERM first.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading

from services.common.errors import ConfigError
from services.common.lifecycle import catch_stop_signals, run_service
from services.common.settings import add_settings_arguments, load_settings, overrides_from_args


def build_parser(add_help: bool = True) -> argparse.ArgumentParser:
    """Flags: one per trainer setting."""
    from services.trainer.config import TrainerSettings

    parser = argparse.ArgumentParser(
        prog="python -m services.trainer",
        description="Retrain models from the stream on request, gated by the champion.",
        add_help=add_help,
    )
    add_settings_arguments(parser, TrainerSettings)
    return parser


def serve(
    args: argparse.Namespace, environ: dict[str, str], stop: threading.Event | None = None
) -> int:
    """Build settings from the environment and flags, then run until stopped."""
    from services.trainer.app import run
    from services.trainer.config import TrainerSettings

    try:
        settings = load_settings(
            TrainerSettings, "trainer", environ, overrides_from_args(args, TrainerSettings)
        )
    except ConfigError as exc:
        print(f"trainer: configuration error: {exc}", file=sys.stderr)
        return 2
    return run_service(run, settings, stop or catch_stop_signals())


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code."""
    stop = catch_stop_signals()
    return serve(build_parser().parse_args(argv), dict(os.environ), stop)


if __name__ == "__main__":
    sys.exit(main())
