"""A scripted webhook receiver on 127.0.0.1 for alerting tests.

Every request is recorded (arrival time, headers, body, whether its signature verified). The
answer comes from a script: a list of behaviours consumed one per request, then the default.
A behaviour is an HTTP status, optionally with headers (e.g. Retry-After) and a delay before
answering (a hang longer than the sender's timeout).
"""

from __future__ import annotations

import dataclasses
import http.server
import json
import threading
import time
from typing import Any

from services.alerting.webhook_signing import Verifier, WebhookVerificationError


@dataclasses.dataclass(frozen=True)
class Reply:
    """How to answer one request."""

    status: int = 204
    headers: tuple[tuple[str, str], ...] = ()
    delay_s: float = 0.0


@dataclasses.dataclass
class Delivery:
    """One request as received."""

    at: float
    headers: dict[str, str]
    body: bytes
    verified: str  # "ok" or the verification failure
    status: int  # what we answered

    @property
    def webhook_id(self) -> str:
        return self.headers.get("webhook-id", "")

    @property
    def payload(self) -> dict[str, Any]:
        return json.loads(self.body)


class Receiver:
    """The receiver; `url` to configure, `deliveries` to assert on."""

    def __init__(
        self,
        secret: str,
        script: list[Reply] | None = None,
        default: Reply = Reply(),
        port: int = 0,
    ):
        self.secret = secret
        self.script = list(script or [])
        self.default = default
        self.deliveries: list[Delivery] = []
        self.lock = threading.Lock()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                headers = {k.lower(): v for k, v in self.headers.items()}
                try:  # a fresh verifier per request: redeliveries are expected, not replays
                    Verifier([outer.secret]).verify(headers, body, time.time())
                    verified = "ok"
                except WebhookVerificationError as exc:
                    verified = exc.reason.value
                with outer.lock:
                    reply = outer.script.pop(0) if outer.script else outer.default
                    outer.deliveries.append(
                        Delivery(time.time(), headers, body, verified, reply.status)
                    )
                if reply.delay_s:
                    time.sleep(reply.delay_s)
                try:
                    self.send_response(reply.status)
                    for k, v in reply.headers:
                        self.send_header(k, v)
                    self.send_header("content-length", "0")
                    self.end_headers()
                except OSError:
                    pass  # the sender gave up waiting

            def log_message(self, *_args: Any) -> None:
                pass

        class Server(http.server.ThreadingHTTPServer):
            request_queue_size = 256  # bursts of concurrent deliveries are not refused

        self.server = Server(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_port
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def set_default(self, reply: Reply) -> None:
        with self.lock:
            self.default = reply

    def accepted(self) -> list[Delivery]:
        """Deliveries answered with 2xx."""
        with self.lock:
            return [d for d in self.deliveries if 200 <= d.status < 300]

    def all(self) -> list[Delivery]:
        with self.lock:
            return list(self.deliveries)

    def wait_for(self, predicate: Any, timeout_s: float = 30.0) -> list[Delivery]:
        """Wait until predicate(deliveries) is true; AssertionError with what came otherwise."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            got = self.all()
            if predicate(got):
                return got
            time.sleep(0.05)
        got = self.all()
        raise AssertionError(
            f"receiver did not get what was expected in {timeout_s} s; got {len(got)}: "
            + "; ".join(f"{d.status} {d.webhook_id} {d.verified}" for d in got[-10:])
        )

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
