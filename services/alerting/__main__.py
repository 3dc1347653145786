"""`python -m services.alerting`: flags and settings, then the faust worker until SIGTERM."""

from __future__ import annotations

import sys

from services.common.lifecycle import RunFn, service_main


def load() -> tuple[type, RunFn]:
    """The alerting settings and worker (faust: imported once SIGTERM is caught).

    The worker handles signals itself once it runs, and exits the process itself.
    """
    from services.alerting.app import run
    from services.alerting.config import AlertingSettings

    return AlertingSettings, lambda settings, _stop: run(settings)


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code."""
    return service_main(
        "alerting", "Breaches to grouped, signed webhook alerts and retrain requests.", load, argv
    )


if __name__ == "__main__":
    sys.exit(main())
