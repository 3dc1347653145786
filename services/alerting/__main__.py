"""`python -m services.alerting`: flags and settings, then the faust worker until SIGTERM."""

from __future__ import annotations

import sys

from services.alerting.app import run
from services.alerting.config import AlertingSettings
from services.common.lifecycle import service_main


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code (the worker exits the process itself)."""
    return service_main(
        AlertingSettings,
        "alerting",
        lambda settings, _stop: run(settings),
        "Breaches to grouped, signed webhook alerts and retrain requests.",
        argv,
    )


if __name__ == "__main__":
    sys.exit(main())
