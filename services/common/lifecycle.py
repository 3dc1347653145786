"""Process lifecycle: logging, signals to a stop event, and exit codes.

A service's `main` is `service_main(...)`: it catches SIGINT/SIGTERM first, then imports the
service's settings and app, parses flags, builds settings and runs it. The signals set the stop
event, a second one exits at once. Fatal errors exit 1, configuration errors exit 2 with the message
telling what to fix.
"""

from __future__ import annotations

import gc
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable
from typing import Any

from services.common.errors import ConfigError, FatalError

log = logging.getLogger(__name__)


def freeze_startup_objects() -> None:
    """Keep start-up objects (modules, models, baselines) out of the collector's full passes.

    They never die, yet a full pass, triggered by the batches' short-lived records, walks them
    all: tens of milliseconds every few seconds, which is a latency tail. Call once, when the
    service is about to enter its loop.
    """
    gc.collect()
    gc.freeze()


def configure_logging(level: str = "INFO") -> None:
    """One plain log format for every service (stderr)."""
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def catch_stop_signals() -> threading.Event:
    """From now on SIGINT/SIGTERM set the returned event; a second one exits immediately.

    Called before a service imports its app (onnxruntime, scikit-learn, faust: seconds on a
    busy machine), so that a SIGTERM during start-up is a clean stop (exit 0), not a death by
    signal (-15) that a supervisor counts as a crash.
    """
    stop = threading.Event()

    def _handler(signum: int, _frame: Any) -> None:
        if stop.is_set():
            log.warning("second %s: exiting now", signal.Signals(signum).name)
            os._exit(128 + signum)
        log.info("%s received: stopping", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGINT, _handler)
    signal.signal(signal.SIGTERM, _handler)
    return stop


RunFn = Callable[[Any, threading.Event], None]


def run_service(run: RunFn, settings: Any, stop: threading.Event) -> int:
    """Run `run(settings, stop)`, unless a signal already came; returns the exit code."""
    configure_logging(getattr(settings, "log_level", "INFO"))
    log.info("settings: %s", settings.describe())
    if stop.is_set():
        log.info("stop requested while starting: exiting before the loop")
        return 0
    try:
        run(settings, stop)
    except ConfigError as exc:
        log.error("configuration error: %s", exc)
        return 2
    except FatalError as exc:
        log.error("fatal: %s", exc)
        return 1
    return 0


def service_main(
    service: str,
    description: str,
    load: Callable[[], tuple[type, RunFn]],
    argv: list[str] | None = None,
) -> int:
    """A service's whole `main`: one flag per setting, settings from env + flags, then run.

    `load` imports the service's modules and returns its settings class and run function; it
    is called once the stop signals are caught.
    """
    import argparse

    stop = catch_stop_signals()
    settings_cls, run = load()

    from services.common.settings import (
        add_settings_arguments,
        load_settings,
        overrides_from_args,
    )

    parser = argparse.ArgumentParser(prog=f"python -m services.{service}", description=description)
    add_settings_arguments(parser, settings_cls)
    args = parser.parse_args(argv)
    try:
        settings = load_settings(
            settings_cls, service, os.environ, overrides_from_args(args, settings_cls)
        )
    except ConfigError as exc:
        print(f"{service}: configuration error: {exc}", file=sys.stderr)
        return 2
    return run_service(run, settings, stop)
