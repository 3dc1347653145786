"""An HTTP connection pool that checks every address it connects to (the SSRF guard at delivery).

The pool resolves the host itself, refuses the connection when any resolved address is private,
loopback, link-local or otherwise unsafe (`ssrf.check_url`), and connects to the checked address,
so a name cannot resolve to something else between the check and the connect (DNS rebinding).
TLS still verifies the certificate against the host name. httpcore never follows redirects.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterable
from typing import Any

import httpcore

from services.alerting.ssrf import PRODUCTION, Policy, Resolver, check_url, numeric_host


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """A network backend that connects only to addresses `ssrf` allows."""

    def __init__(self, resolver: Resolver = socket.getaddrinfo, policy: Policy = PRODUCTION):
        self.resolver = resolver
        self.policy = policy
        self.inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        """Resolve, check every address, connect to the first."""
        url = f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"
        if numeric_host(host) is not None:  # nothing to resolve: check without a thread hop
            addresses = check_url(url, self.resolver, self.policy)
        else:
            addresses = await asyncio.to_thread(check_url, url, self.resolver, self.policy)
        return await self.inner.connect_tcp(
            str(addresses[0]), port, timeout, local_address, socket_options
        )

    async def connect_unix_socket(self, *_args: Any, **_kwargs: Any) -> httpcore.AsyncNetworkStream:
        """Webhooks go over TCP only."""
        raise httpcore.ConnectError("unix sockets are not webhook destinations")

    async def sleep(self, seconds: float) -> None:
        """As the inner backend."""
        await self.inner.sleep(seconds)


def guarded_pool(
    resolver: Resolver = socket.getaddrinfo, policy: Policy = PRODUCTION, max_connections: int = 50
) -> httpcore.AsyncConnectionPool:
    """A connection pool whose every connection passed the SSRF guard."""
    return httpcore.AsyncConnectionPool(
        max_connections=max_connections,
        keepalive_expiry=30.0,
        network_backend=GuardedBackend(resolver, policy),
    )
