"""`python -m services.cli.demo_alerting`: the alerting service as the demo runs it.

The demo's webhook receiver is `streamops webhook sink` on 127.0.0.1, which the alerting
service's SSRF guard refuses in production. This entry point, and only it, passes the loopback
allowance in code (the alerting tests run it too); no setting, flag or config file can switch it
on, so `python -m services.alerting` never delivers to loopback addresses.
"""

from __future__ import annotations

import sys

from services.alerting.app import run
from services.alerting.config import AlertingSettings
from services.alerting.ssrf import Policy
from services.common.lifecycle import service_main

DEMO_ONLY = Policy(allow_loopback_for_tests=True)


def main(argv: list[str] | None = None) -> int:
    """As `python -m services.alerting`, with loopback receivers allowed (the demo's sink)."""
    return service_main(
        AlertingSettings,
        "alerting",
        lambda settings, _stop: run(settings, policy=DEMO_ONLY),
        "The alerting service for the demo (delivers to the local webhook sink).",
        argv,
    )


if __name__ == "__main__":
    sys.exit(main())
