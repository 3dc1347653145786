"""R15 at delivery: the guarded pool checks every address it connects to; redirects stay put.

Names resolve through an injected resolver (no DNS); a canary listening on 127.0.0.1 counts
connections and must see none.
"""

from __future__ import annotations

import asyncio
import socket
import threading

import pytest

from services.alerting.guarded_http import guarded_pool
from services.alerting.retry_policy import Outcome, classify
from services.alerting.ssrf import PRODUCTION, Policy, UnsafeDestination

pytestmark = pytest.mark.unit


class Canary:
    """A TCP listener on 127.0.0.1 that counts connections and answers a fixed HTTP response."""

    def __init__(self, response: bytes = b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n"):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self.response = response
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            conn.recv(65536)
            conn.sendall(self.response)
            conn.close()


def resolve_to(address: str):
    return lambda host, port: [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]


def post(url: str, resolver=socket.getaddrinfo, policy: Policy = PRODUCTION) -> int:
    async def go() -> int:
        async with guarded_pool(resolver, policy) as pool:
            response = await pool.request("POST", url, content=b"{}")
            return response.status

    return asyncio.run(go())


@pytest.mark.parametrize(
    "host",
    [
        "hooks.example.com",  # a name that resolves to loopback
        "2130706433",  # 127.0.0.1 as one decimal number
        "0x7f.1",  # inet_aton spelling
        "[::ffff:127.0.0.1]",  # IPv6-mapped
        "127.0.0.1",
    ],
)
def test_loopback_in_any_spelling_never_gets_a_connection(host: str) -> None:
    canary = Canary()
    with pytest.raises(UnsafeDestination):
        post(f"http://{host}:{canary.port}/hook", resolve_to("127.0.0.1"))
    assert canary.connections == 0


def test_a_name_resolving_to_a_private_address_is_refused_before_connecting() -> None:
    with pytest.raises(UnsafeDestination, match="private"):
        post("http://hooks.example.com:9/hook", resolve_to("10.1.2.3"))


def test_redirects_are_not_followed() -> None:
    canary = Canary()
    redirector = Canary(
        f"HTTP/1.1 307 Temporary Redirect\r\nlocation: http://127.0.0.1:{canary.port}/\r\n"
        "content-length: 0\r\n\r\n".encode()
    )
    status = post(
        f"http://127.0.0.1:{redirector.port}/hook", policy=Policy(allow_loopback_for_tests=True)
    )
    assert status == 307 and classify(status) is Outcome.REDIRECT
    assert redirector.connections == 1 and canary.connections == 0


def test_the_test_allowance_reaches_loopback_only() -> None:
    canary = Canary()
    allowed = Policy(allow_loopback_for_tests=True)
    assert post(f"http://127.0.0.1:{canary.port}/hook", policy=allowed) == 204
    with pytest.raises(UnsafeDestination):
        post("http://hooks.example.com:9/hook", resolve_to("192.168.1.1"), allowed)
