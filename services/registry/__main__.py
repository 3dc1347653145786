"""`python -m services.registry`: parse flags, build settings, serve until SIGTERM."""

from __future__ import annotations

import argparse
import os
import sys

from services.common.settings import add_settings_arguments, load_settings, overrides_from_args
from services.registry.config import RegistrySettings


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code."""
    parser = argparse.ArgumentParser(
        prog="python -m services.registry",
        description="Model registry: versions, lineage, deployments, approvals, audit trail.",
    )
    add_settings_arguments(parser, RegistrySettings)
    args = parser.parse_args(argv)
    from services.common.errors import ConfigError
    from services.common.lifecycle import run_service
    from services.registry.app import run

    try:
        settings = load_settings(
            RegistrySettings, "registry", os.environ, overrides_from_args(args, RegistrySettings)
        )
    except ConfigError as exc:
        print(f"registry: configuration error: {exc}", file=sys.stderr)
        return 2
    return run_service(run, settings)


if __name__ == "__main__":
    sys.exit(main())
