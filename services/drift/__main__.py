"""`python -m services.drift`: parse flags, build settings, run until SIGTERM."""

from __future__ import annotations

import argparse
import os
import sys

from services.common.errors import ConfigError
from services.common.lifecycle import run_service
from services.common.settings import add_settings_arguments, load_settings, overrides_from_args
from services.drift.app import run
from services.drift.config import DriftSettings


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code."""
    parser = argparse.ArgumentParser(
        prog="python -m services.drift",
        description="Windowed drift, data quality and accuracy from delayed labels.",
    )
    add_settings_arguments(parser, DriftSettings)
    args = parser.parse_args(argv)
    try:
        settings = load_settings(
            DriftSettings, "drift", os.environ, overrides_from_args(args, DriftSettings)
        )
    except ConfigError as exc:
        print(f"drift: configuration error: {exc}", file=sys.stderr)
        return 2
    return run_service(run, settings)


if __name__ == "__main__":
    sys.exit(main())
