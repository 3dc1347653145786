"""`python -m services.trainer`: consume retrain requests until SIGTERM."""

from __future__ import annotations

import argparse
import os
import sys

from services.common.errors import ConfigError
from services.common.lifecycle import run_service
from services.common.settings import add_settings_arguments, load_settings, overrides_from_args
from services.trainer.app import run
from services.trainer.config import TrainerSettings


def build_parser(add_help: bool = True) -> argparse.ArgumentParser:
    """Flags: one per trainer setting."""
    parser = argparse.ArgumentParser(
        prog="python -m services.trainer",
        description="Retrain models from the stream on request, gated by the champion.",
        add_help=add_help,
    )
    add_settings_arguments(parser, TrainerSettings)
    return parser


def serve(args: argparse.Namespace, environ: dict[str, str]) -> int:
    """Build settings from the environment and flags, then run until stopped."""
    try:
        settings = load_settings(
            TrainerSettings, "trainer", environ, overrides_from_args(args, TrainerSettings)
        )
    except ConfigError as exc:
        print(f"trainer: configuration error: {exc}", file=sys.stderr)
        return 2
    return run_service(run, settings)


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code."""
    return serve(build_parser().parse_args(argv), dict(os.environ))


if __name__ == "__main__":
    sys.exit(main())
