"""A client of the registry and alerting HTTP APIs: the token, and errors that say what to do.

Shared by the `streamops` command and `import streamops`; each names its own way of pointing
at a service (`--registry-url` or `registry_url=`) in the hints. Failures raise an `ApiError`:
`ApiUnreachable` (nothing answers), `ApiUnauthorized` (401: no or a wrong token), `ApiNotFound`
(404), or `ApiError` itself with the status and the service's message.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import httpx

from services.common.errors import StreamopsError
from services.common.settings import Secret

REGISTRY_START = "`python -m services.registry` (or `make up`)"
ALERTING_START = "`python -m services.alerting` (or `make up`)"


class ApiError(StreamopsError):
    """A service API refused or failed a call; `status` is the HTTP status (None: no answer),
    `field` the request field the service named as the fault, if it named one."""

    def __init__(self, message: str, status: int | None = None, field: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.field = field


class ApiUnreachable(ApiError):
    """Nothing answered at the service's address: start it, or point the client at it."""


class ApiUnauthorized(ApiError):
    """401: the call needs a (valid) token."""


class ApiNotFound(ApiError):
    """404: the model, version or deployment asked for does not exist."""


_BY_STATUS = {401: ApiUnauthorized, 404: ApiNotFound}


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
        url_option: str = "",
        token_option: str = "",
    ) -> None:
        self.url = url.rstrip("/")
        self.service, self.start_hint = service, start_hint
        env = f"STREAMOPS_CLI_{service.upper()}_URL"
        self._where = f"{url_option} / {env}" if url_option else env
        self._token_hint = (
            f"pass {token_option} or set STREAMOPS_CLI_TOKEN"
            if token_option
            else "set STREAMOPS_CLI_TOKEN"
        )
        headers = {"Authorization": f"Bearer {token.reveal()}"} if token else {}
        self._http = httpx.Client(
            base_url=self.url, headers=headers, timeout=timeout_s, transport=transport
        )

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise ApiUnreachable(
                f"the {self.service} at {self.url} is not reachable ({type(exc).__name__}); "
                f"start it with {self.start_hint}, or point {self._where} at it"
            ) from None
        try:
            body = response.json()
        except json.JSONDecodeError:
            body = None
        if response.is_success:
            return body
        status = response.status_code
        message = body.get("message") if isinstance(body, dict) else response.text[:200]
        hint = f" ({self._token_hint})" if status == 401 else ""
        error = _BY_STATUS.get(status, ApiError)
        field = body.get("field") if isinstance(body, dict) else None
        raise error(f"{self.service} said {status}: {message}{hint}", status, field)

    def get(self, path: str, **params: Any) -> Any:
        """GET `path` with query parameters; the decoded JSON."""
        return self._call("GET", path, params={k: v for k, v in params.items() if v is not None})

    def post(self, path: str, body: Mapping[str, Any] | None = None) -> Any:
        """POST a JSON body; the decoded JSON."""
        return self._call("POST", path, json=dict(body or {}))

    def delete(self, path: str) -> Any:
        """DELETE `path`; the decoded JSON."""
        return self._call("DELETE", path)

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()
