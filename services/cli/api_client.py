"""The CLI's client of the registry and alerting HTTP APIs: where, which token, clear errors.

`STREAMOPS_CLI_TOKEN`, `STREAMOPS_CLI_ALERTING_TOKEN`, `STREAMOPS_CLI_REGISTRY_URL` and
`STREAMOPS_CLI_ALERTING_URL` (or `--token`, `--registry-url`, `--alerting-url`) are settings of
the `cli` service, so the unknown-key rule still catches typos. The alerting commands find the
local stack's token in var/alerting/token by themselves (see `alerting_token`). The HTTP part
is services/common/api_client.py, shared with the Python client.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import httpx

from services.cli.cli_settings import CliSettings, cli_settings
from services.common import api_client, local_tokens, secret_files
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
        token_hint: str = "",
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
        if token_hint:  # where this service's token comes from, told on a 401
            self._token_hint = token_hint

    @classmethod
    def registry(cls, args: argparse.Namespace, environ: Mapping[str, str]) -> ApiClient:
        """The registry's client, from flags over environment over defaults."""
        _warn_argv_token(args)
        overrides = {"registry_url": args.registry_url, "token": args.token}
        settings = cli_settings(environ, overrides)
        return cls(settings.registry_url, settings.token, settings.timeout_s)

    @classmethod
    def alerting(cls, args: argparse.Namespace, environ: Mapping[str, str]) -> ApiClient:
        """The alerting service's client, from flags over environment over defaults."""
        _warn_argv_token(args)
        overrides = {"alerting_url": args.alerting_url, "alerting_token": args.token}
        settings = cli_settings(environ, overrides)
        return cls(
            settings.alerting_url,
            alerting_token(settings),
            settings.timeout_s,
            service="alerting",
            start_hint=ALERTING_START,
            token_hint="pass --token or set STREAMOPS_CLI_ALERTING_TOKEN to the service's token "
            f"(a local stack's is in {local_tokens.alerting_path(settings.var_dir)})",
        )


def alerting_token(settings: CliSettings) -> Secret:
    """The token for the alerting API: --token or STREAMOPS_CLI_ALERTING_TOKEN, else the local
    stack's var/alerting/token, else STREAMOPS_CLI_TOKEN.

    The file comes before STREAMOPS_CLI_TOKEN because `streamops infra up` suggests exporting
    the registry's owner token there, which the alerting API does not know.
    """
    if settings.alerting_token:
        return settings.alerting_token
    local = secret_files.read(local_tokens.alerting_path(settings.var_dir))
    return Secret(local) if local else settings.token


def _warn_argv_token(args: argparse.Namespace) -> None:
    if getattr(args, "token", None):
        print(
            "streamops: warning: --token is visible to every local user (ps, /proc); "
            "prefer the environment (STREAMOPS_CLI_TOKEN, STREAMOPS_CLI_ALERTING_TOKEN)",
            file=sys.stderr,
        )


def url_part(value: object) -> str:
    """`value` as one path segment of an API URL: `/`, `?`, `#`, spaces and every other reserved
    character escaped, and `.` or `..` too, which a client would resolve as a step up.

    >>> url_part("a/../b?c#d e"), url_part(".."), url_part("credit-v2.1")
    ('a%2F..%2Fb%3Fc%23d%20e', '%2E%2E', 'credit-v2.1')
    """
    part = quote(str(value), safe="")
    return part.replace(".", "%2E") if part in (".", "..") else part


def print_json(value: Any) -> None:
    """Pretty JSON on stdout."""
    print(json.dumps(value, indent=2, sort_keys=True))
