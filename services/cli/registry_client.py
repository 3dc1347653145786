"""The CLI's client of the registry HTTP API: where it is, which token to send, clear errors.

`STREAMOPS_CLI_TOKEN` and `STREAMOPS_CLI_REGISTRY_URL` (or `--token`, `--registry-url`) are
settings of the `cli` service, so the unknown-key rule still catches typos.
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


class RegistryClient:
    """GET and POST against the registry, turning every failure into a readable error."""

    def __init__(
        self,
        url: str,
        token: Secret,
        timeout_s: float = 10.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        headers = {"Authorization": f"Bearer {token.reveal()}"} if token else {}
        self._http = httpx.Client(
            base_url=self.url, headers=headers, timeout=timeout_s, transport=transport
        )

    @classmethod
    def from_args(cls, args: argparse.Namespace, environ: Mapping[str, str]) -> RegistryClient:
        """Built from flags over environment over defaults."""
        overrides = {"registry_url": args.registry_url, "token": args.token}
        settings = cli_settings(environ, overrides)
        return cls(settings.registry_url, settings.token, settings.timeout_s)

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise StreamopsError(
                f"the registry at {self.url} is not reachable ({type(exc).__name__}); start it "
                "with `python -m services.registry` (or `make up`), or point "
                "--registry-url / STREAMOPS_CLI_REGISTRY_URL at it"
            ) from None
        try:
            body = response.json()
        except json.JSONDecodeError:
            body = None
        if response.is_success:
            return body
        message = body.get("message") if isinstance(body, dict) else response.text[:200]
        hint = " (pass --token or set STREAMOPS_CLI_TOKEN)" if response.status_code == 401 else ""
        raise StreamopsError(f"registry said {response.status_code}: {message}{hint}")

    def get(self, path: str, **params: Any) -> Any:
        """GET `path` with query parameters; the decoded JSON."""
        return self._call("GET", path, params={k: v for k, v in params.items() if v is not None})

    def post(self, path: str, body: Mapping[str, Any] | None = None) -> Any:
        """POST a JSON body; the decoded JSON."""
        return self._call("POST", path, json=dict(body or {}))


def print_json(value: Any) -> None:
    """Pretty JSON on stdout."""
    print(json.dumps(value, indent=2, sort_keys=True))
