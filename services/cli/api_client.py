"""The CLI's client of the registry and alerting HTTP APIs: where, which token, clear errors.

`STREAMOPS_CLI_TOKEN`, `STREAMOPS_CLI_REGISTRY_URL` and `STREAMOPS_CLI_ALERTING_URL` (or
`--token`, `--registry-url`, `--alerting-url`) are settings of the `cli` service, so the
unknown-key rule still catches typos.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping
from typing import Any

import httpx

from services.cli.cli_settings import cli_settings
from services.common.errors import StreamopsError
from services.common.settings import Secret


def add_client_arguments(parser: argparse.ArgumentParser) -> None:
    """`--registry-url`, `--token` and `--json` on a registry command."""
    parser.add_argument("--registry-url", help="registry API (default STREAMOPS_CLI_REGISTRY_URL)")
    parser.add_argument("--token", help="API token (default STREAMOPS_CLI_TOKEN)")
    parser.add_argument("--json", action="store_true", help="print the raw JSON answer")


REGISTRY_START = "`python -m services.registry` (or `make up`)"
ALERTING_START = "`python -m services.alerting` (or `make up`)"


class ApiClient:
    """GET, POST and DELETE against a service API, turning every failure into a readable error."""

    def __init__(
        self,
        url: str,
        token: Secret,
        timeout_s: float = 10.0,
        transport: httpx.BaseTransport | None = None,
        service: str = "registry",
        start_hint: str = REGISTRY_START,
    ) -> None:
        self.url = url.rstrip("/")
        self.service, self.start_hint = service, start_hint
        headers = {"Authorization": f"Bearer {token.reveal()}"} if token else {}
        self._http = httpx.Client(
            base_url=self.url, headers=headers, timeout=timeout_s, transport=transport
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

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise StreamopsError(
                f"the {self.service} at {self.url} is not reachable ({type(exc).__name__}); "
                f"start it with {self.start_hint}, or point --{self.service}-url / "
                f"STREAMOPS_CLI_{self.service.upper()}_URL at it"
            ) from None
        try:
            body = response.json()
        except json.JSONDecodeError:
            body = None
        if response.is_success:
            return body
        message = body.get("message") if isinstance(body, dict) else response.text[:200]
        hint = " (pass --token or set STREAMOPS_CLI_TOKEN)" if response.status_code == 401 else ""
        raise StreamopsError(f"{self.service} said {response.status_code}: {message}{hint}")

    def get(self, path: str, **params: Any) -> Any:
        """GET `path` with query parameters; the decoded JSON."""
        return self._call("GET", path, params={k: v for k, v in params.items() if v is not None})

    def post(self, path: str, body: Mapping[str, Any] | None = None) -> Any:
        """POST a JSON body; the decoded JSON."""
        return self._call("POST", path, json=dict(body or {}))

    def delete(self, path: str) -> Any:
        """DELETE `path`; the decoded JSON."""
        return self._call("DELETE", path)


def print_json(value: Any) -> None:
    """Pretty JSON on stdout."""
    print(json.dumps(value, indent=2, sort_keys=True))
