"""`python -m services.registry`: parse flags, build settings, serve until SIGTERM."""

from __future__ import annotations

import sys

from services.common.lifecycle import RunFn, service_main


def load() -> tuple[type, RunFn]:
    """The registry's settings and server (imported once SIGTERM is caught)."""
    from services.registry.app import run
    from services.registry.config import RegistrySettings

    return RegistrySettings, run


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code."""
    return service_main(
        "registry",
        "Model registry: versions, lineage, deployments, approvals, audit trail.",
        load,
        argv,
    )


if __name__ == "__main__":
    sys.exit(main())
