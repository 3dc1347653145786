"""The CLI's client of the registry and alerting HTTP APIs: where, which token, clear errors.

`STREAMOPS_CLI_TOKEN`, `STREAMOPS_CLI_REGISTRY_URL` and `STREAMOPS_CLI_ALERTING_URL` (or
`--token`, `--registry-url`, `--alerting-url`) are settings of the `cli` service, so the
unknown-key rule still catches typos. The HTTP part is services/common/api_client.py, shared
with the Python client.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping
from typing import Any

import httpx

from services.cli.cli_settings import cli_settings
from services.common import api_client
from services.common.api_client import ALERTING_START, REGISTRY_START
from services.common.settings import Secret


def add_client_arguments(parser: argparse.ArgumentParser) -> None:
    """`--registry-url`, `--token` and `--json` on a registry command."""
    parser.add_argument("--registry-url", help="registry API (default STREAMOPS_CLI_REGISTRY_URL)")
    parser.add_argument("--token", help="API token (default STREAMOPS_CLI_TOKEN)")
    parser.add_argument("--json", action="store_true", help="print the raw JSON answer")


class ApiClient(api_client.ApiClient):
    """The shared API client, its hints naming the command's flags."""

    def __init__(
        self,
        url: str,
        token: Secret,
        timeout_s: float = 10.0,
        transport: httpx.BaseTransport | None = None,
        service: str = "registry",
        start_hint: str = REGISTRY_START,
    ) -> None:
        super().__init__(
            url,
            token,
            timeout_s,
            transport,
            service,
            start_hint,
            url_option=f"--{service}-url",
            token_option="--token",
        )

    @classmethod
    def registry(cls, args: argparse.Namespace, environ: Mapping[str, str]) -> ApiClient:
        """The registry's client, from flags over environment over defaults."""
        overrides = {"registry_url": args.registry_url, "token": args.token}
        settings = cli_settings(environ, overrides)
        return cls(settings.registry_url, settings.token, settings.timeout_s)

    @classmethod
    def alerting(cls, args: argparse.Namespace, environ: Mapping[str, str]) -> ApiClient:
        """The alerting service's client, from flags over environment over defaults."""
        overrides = {"alerting_url": args.alerting_url, "token": args.token}
        settings = cli_settings(environ, overrides)
        return cls(
            settings.alerting_url,
            settings.token,
            settings.timeout_s,
            service="alerting",
            start_hint=ALERTING_START,
        )


def print_json(value: Any) -> None:
    """Pretty JSON on stdout."""
    print(json.dumps(value, indent=2, sort_keys=True))
