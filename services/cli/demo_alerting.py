"""`python -m services.cli.demo_alerting`: the alerting service as the demo runs it.

The demo's webhook receiver is `streamops webhook sink` on 127.0.0.1, which the alerting
service's SSRF guard refuses in production. This entry point, and only it, passes the loopback
allowance in code (the alerting tests run it too); no setting, flag or config file can switch it
on, so `python -m services.alerting` never delivers to loopback addresses.
"""

from __future__ import annotations

import sys

from services.common.lifecycle import RunFn, service_main


def load() -> tuple[type, RunFn]:
    """The alerting settings and worker, with the loopback allowance (imported once SIGTERM is
    caught, as `python -m services.alerting` does)."""
    from services.alerting.app import run
    from services.alerting.config import AlertingSettings
    from services.alerting.ssrf import Policy

    demo_only = Policy(allow_loopback_for_tests=True)
    return AlertingSettings, lambda settings, _stop: run(settings, policy=demo_only)


def main(argv: list[str] | None = None) -> int:
    """As `python -m services.alerting`, with loopback receivers allowed (the demo's sink)."""
    return service_main(
        "alerting",
        "The alerting service for the demo (delivers to the local webhook sink).",
        load,
        argv,
    )


if __name__ == "__main__":
    sys.exit(main())
