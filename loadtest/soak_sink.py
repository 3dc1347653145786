"""The soak's webhook receiver: counts alerting's deliveries and answers 500 while told to fail.

It runs in the soak's own process (a thread), so the fault is a flag, not a restart. Signatures
are not verified here: `streamops webhook sink` and the alerting tests (R14) cover that; the soak
only needs to know when deliveries fail and when they get through again.
"""

from __future__ import annotations

import http.server
import threading
import time


class WebhookSink:
    """A loopback HTTP receiver: 204 normally, 500 while `failing` is set."""

    def __init__(self, port: int) -> None:
        self.failing = threading.Event()
        self.accepted: list[float] = []  # monotonic arrival of each 204
        self.refused = 0
        sink = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the http.server hook's name
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(min(length, 4 * 1024 * 1024))
                if sink.failing.is_set():
                    sink.refused += 1
                    self.send_response(500)
                else:
                    sink.accepted.append(time.monotonic())
                    self.send_response(204)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_args: object) -> None:
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="soak-sink", daemon=True
        )

    def start(self) -> WebhookSink:
        """Start answering."""
        self._thread.start()
        return self

    def accepted_since(self, t: float) -> int:
        """Deliveries accepted at or after monotonic time `t`."""
        return sum(1 for a in self.accepted if a >= t)

    def close(self) -> None:
        """Stop answering."""
        self._server.shutdown()
        self._server.server_close()
