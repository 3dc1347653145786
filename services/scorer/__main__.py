"""`python -m services.scorer`: parse flags, build settings, run until SIGTERM."""

from __future__ import annotations

import sys

from services.common.lifecycle import RunFn, service_main


def load() -> tuple[type, RunFn]:
    """The scorer's settings and loop (onnxruntime: imported once SIGTERM is caught)."""
    from services.scorer.app import run
    from services.scorer.config import ScorerSettings

    return ScorerSettings, run


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code."""
    return service_main("scorer", "Streaming inference with hot-swapped models.", load, argv)


if __name__ == "__main__":
    sys.exit(main())
