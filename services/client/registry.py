"""Registry reads: models, one model version, deployments, a deployment's champion.

Over the registry's HTTP API with the shared client (services/common/api_client.py): a registry
that does not answer raises `ApiUnreachable`, a missing or wrong token `ApiUnauthorized`, a name
that does not exist `ApiNotFound`; each message says what to do.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from services.client.records import ModelRef
from services.common.api_client import REGISTRY_START, ApiClient
from services.common.settings import Secret


def _part(name: str) -> str:
    return quote(str(name), safe="")


class RegistryReader:
    """The read side of the registry API."""

    def __init__(self, url: str, token: Secret, timeout_s: float = 10.0, **http: Any) -> None:
        self.api = ApiClient(
            url,
            token,
            timeout_s,
            service="registry",
            start_hint=REGISTRY_START,
            url_option="registry_url=",
            token_option="token=",
            **http,
        )

    def models(self) -> list[dict[str, Any]]:
        """Every model name with its versions and latest version."""
        return list(self.api.get("/models"))

    def model(self, name: str, version: int | None = None) -> dict[str, Any]:
        """One version of a model (the latest when `version` is None): signature, classes,
        lineage, metrics and baseline summary."""
        if version is None:
            versions = [v["version"] for v in self.api.get(f"/models/{_part(name)}")["versions"]]
            version = max(versions)
        return dict(self.api.get(f"/models/{_part(name)}/versions/{int(version)}"))

    def deployments(self) -> list[dict[str, Any]]:
        """Every deployment's current revision."""
        return list(self.api.get("/deployments"))

    def deployment(self, name: str) -> dict[str, Any]:
        """A deployment's current revision, its pending requests and its latest drift report."""
        return dict(self.api.get(f"/deployments/{_part(name)}"))

    def champion(self, deployment: str) -> tuple[ModelRef, bool | None]:
        """The champion of a deployment and whether the deployment is external."""
        current = self.deployment(deployment)
        return ModelRef.of(current["champion"]), current.get("external")

    def close(self) -> None:
        """Close the HTTP connections."""
        self.api.close()
