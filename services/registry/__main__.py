"""`python -m services.registry`: parse flags, build settings, serve until SIGTERM."""

from __future__ import annotations

import sys

from services.common.lifecycle import service_main
from services.registry.app import run
from services.registry.config import RegistrySettings


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code."""
    return service_main(
        RegistrySettings,
        "registry",
        run,
        "Model registry: versions, lineage, deployments, approvals, audit trail.",
        argv,
    )


if __name__ == "__main__":
    sys.exit(main())
