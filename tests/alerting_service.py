"""`python -m tests.alerting_service`: the alerting service with loopback receivers allowed.

The only way to deliver to 127.0.0.1 is to pass `Policy(allow_loopback_for_tests=True)` in code,
as this test entry point does; no setting, flag or config file can switch it on.
"""

from __future__ import annotations

import sys

from services.alerting.app import run
from services.alerting.config import AlertingSettings
from services.alerting.ssrf import Policy
from services.common.lifecycle import service_main

TESTS_ONLY = Policy(allow_loopback_for_tests=True)


def main(argv: list[str] | None = None) -> int:
    """As `python -m services.alerting`, with loopback receivers allowed."""
    return service_main(
        AlertingSettings,
        "alerting",
        lambda settings, _stop: run(settings, policy=TESTS_ONLY),
        "The alerting service for tests (loopback receivers allowed).",
        argv,
    )


if __name__ == "__main__":
    sys.exit(main())
