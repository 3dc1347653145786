"""`python -m services.scorer`: parse flags, build settings, run until SIGTERM."""

from __future__ import annotations

import sys

from services.common.lifecycle import service_main
from services.scorer.app import run
from services.scorer.config import ScorerSettings


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code."""
    return service_main(
        ScorerSettings, "scorer", run, "Streaming inference with hot-swapped models.", argv
    )


if __name__ == "__main__":
    sys.exit(main())
