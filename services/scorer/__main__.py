"""`python -m services.scorer`: parse flags, build settings, run until SIGTERM."""

from __future__ import annotations

import argparse
import os
import sys

from services.common.settings import add_settings_arguments, load_settings, overrides_from_args
from services.scorer.app import run
from services.scorer.config import ScorerSettings


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code."""
    parser = argparse.ArgumentParser(
        prog="python -m services.scorer", description="Streaming inference with hot-swapped models."
    )
    add_settings_arguments(parser, ScorerSettings)
    args = parser.parse_args(argv)
    from services.common.errors import ConfigError
    from services.common.lifecycle import run_service

    try:
        settings = load_settings(
            ScorerSettings, "scorer", os.environ, overrides_from_args(args, ScorerSettings)
        )
    except ConfigError as exc:
        print(f"scorer: configuration error: {exc}", file=sys.stderr)
        return 2
    return run_service(run, settings)


if __name__ == "__main__":
    sys.exit(main())
