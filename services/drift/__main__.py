"""`python -m services.drift`: parse flags, build settings, run until SIGTERM."""

from __future__ import annotations

import sys

from services.common.lifecycle import RunFn, service_main


def load() -> tuple[type, RunFn]:
    """The drift service's settings and loop (scipy, river: imported once SIGTERM is caught)."""
    from services.drift.app import run
    from services.drift.config import DriftSettings

    return DriftSettings, run


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code."""
    return service_main(
        "drift", "Windowed drift, data quality and accuracy from delayed labels.", load, argv
    )


if __name__ == "__main__":
    sys.exit(main())
