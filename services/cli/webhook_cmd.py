"""`streamops webhook secret|verify|sink`: the receiving end of streamops alerts.

- `secret` prints a new Standard Webhooks secret (`whsec_` + base64 of 32 random bytes).
- `verify` checks one delivery (headers and body saved by a receiver) with the reference verifier.
- `sink` is a local receiver: it verifies every POST, answers 401 to anything unsigned, forged,
  stale or future, 200 to a replayed `webhook-id` (already handled: at-least-once delivery is
  deduplicated here) and 204 to a new alert, which it prints (and appends to `--out` as JSON
  lines). Bound to 127.0.0.1 by default. Stops on Ctrl-C or SIGTERM.

`verify` and `sink` take the signing secret from `--secret-file` (a 0600 file, one secret per
line) or `$STREAMOPS_WEBHOOK_SECRET` (comma-separated); `--secret` still works but warns, as
every local user can read a command line.
"""

from __future__ import annotations

import argparse
import base64
import http.server
import json
import os
import secrets
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

from services.alerting.webhook_signing import (
    VerificationFailure,
    Verifier,
    WebhookVerificationError,
)

MAX_BODY = 4 * 1024 * 1024


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register `webhook secret|verify|sink`."""
    p = sub.add_parser("webhook", help="create secrets, verify deliveries, run a local receiver")
    actions = p.add_subparsers(dest="webhook_action", metavar="ACTION", required=True)
    secret = actions.add_parser("secret", help="print a new webhook signing secret")
    secret.set_defaults(func=run_secret)

    verify = actions.add_parser("verify", help="verify one saved delivery")
    _secret_args(verify)
    verify.add_argument(
        "--header",
        action="append",
        default=[],
        metavar="'NAME: VALUE'",
        help="a request header (repeat for webhook-id, webhook-timestamp, webhook-signature)",
    )
    verify.add_argument("--body", required=True, help="file holding the exact body (- = stdin)")
    verify.add_argument("--now", type=float, help="verify as of this epoch time (default: now)")
    verify.set_defaults(func=run_verify)

    sink = actions.add_parser("sink", help="a local receiver that verifies and prints alerts")
    _secret_args(sink)
    sink.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    sink.add_argument("--port", type=int, default=9099, help="port to listen on (default 9099)")
    sink.add_argument("--out", help="append each accepted payload to this file as a JSON line")
    sink.set_defaults(func=run_sink)


def _secret_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--secret-file",
        action="append",
        default=[],
        help="file holding the signing secret, one per line (several during key rotation; "
        "keep it mode 0600); default: $STREAMOPS_WEBHOOK_SECRET, comma-separated",
    )
    p.add_argument(
        "--secret",
        action="append",
        default=[],
        help="signing secret on the command line (visible to every local user: prefer "
        "--secret-file or $STREAMOPS_WEBHOOK_SECRET)",
    )


def _from_files(paths: list[str]) -> list[str]:
    found = []
    for path in paths:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise SystemExit(
                f"streamops webhook: cannot read --secret-file {path} ({exc.strerror})"
            ) from None
        found += [line.strip() for line in text.splitlines() if line.strip()]
    return found


def _verifier(args: argparse.Namespace, environ: dict[str, str]) -> Verifier:
    if args.secret:
        print(
            "streamops webhook: warning: --secret is visible to every local user (ps, /proc); "
            "use --secret-file (mode 0600) or $STREAMOPS_WEBHOOK_SECRET",
            file=sys.stderr,
        )
    given = args.secret + _from_files(args.secret_file)
    if not given:
        given = [s for s in environ.get("STREAMOPS_WEBHOOK_SECRET", "").split(",") if s]
    if not given:
        raise SystemExit(
            "streamops webhook: no secret; pass --secret-file with a file holding whsec_... "
            "(`streamops webhook secret` makes one) or set STREAMOPS_WEBHOOK_SECRET"
        )
    try:
        return Verifier(given)
    except ValueError as exc:
        raise SystemExit(f"streamops webhook: bad secret: {exc}") from None


def run_secret(_args: argparse.Namespace, _environ: dict[str, str]) -> int:
    """Print a fresh secret."""
    print("whsec_" + base64.b64encode(secrets.token_bytes(32)).decode())
    return 0


def run_verify(args: argparse.Namespace, environ: dict[str, str]) -> int:
    """0 and the webhook id when the delivery is authentic, 1 and the reason when not."""
    verifier = _verifier(args, environ)
    headers = {}
    for raw in args.header:
        name, sep, value = raw.partition(":")
        if not sep:
            print(f"streamops webhook: --header {raw!r} is not 'NAME: VALUE'", file=sys.stderr)
            return 2
        headers[name.strip()] = value.strip()
    body = sys.stdin.buffer.read() if args.body == "-" else Path(args.body).read_bytes()
    try:
        msg_id = verifier.verify(headers, body, args.now if args.now else time.time())
    except WebhookVerificationError as exc:
        print(f"invalid: {exc}", file=sys.stderr)
        return 1
    print(f"valid: webhook-id {msg_id}")
    return 0


def summarize(payload: dict[str, Any]) -> list[str]:
    """One printable line per alert of a version 4 payload."""
    lines = []
    for alert in payload.get("alerts", []):
        extra = alert.get("streamops", {})
        lines.append(
            f"{alert.get('status', '?').upper():8} {alert.get('labels', {}).get('alertname', '?')}"
            f" deployment={extra.get('deployment', '?')} v{extra.get('model_version', '?')}"
            f" value={extra.get('value', '?')} threshold={extra.get('threshold', '?')}"
            f" fingerprint={alert.get('fingerprint', '?')}"
        )
    return lines


class _Sink(http.server.BaseHTTPRequestHandler):
    verifier: Verifier
    out: Path | None
    lock = threading.Lock()
    server_version = "streamops-sink"

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        if not 0 < length <= MAX_BODY:
            self._answer(413 if length else 400, "a body of 1 byte to 4 MiB is required")
            return
        body = self.rfile.read(length)
        headers = {k: v for k, v in self.headers.items()}
        with self.lock:
            try:
                msg_id = self.verifier.verify(headers, body, time.time())
            except WebhookVerificationError as exc:
                if exc.reason is VerificationFailure.REPLAYED_ID:
                    print(f"duplicate {exc} (already handled)", flush=True)
                    self._answer(200, "duplicate")
                    return
                print(f"REJECTED {exc}", flush=True)
                self._answer(401, str(exc))
                return
            try:
                payload = json.loads(body)
            except ValueError:
                self._answer(400, "the body is not JSON")
                return
            print(
                f"webhook {msg_id}: {payload.get('status')} group {payload.get('groupKey')} "
                f"to {payload.get('receiver')}",
                flush=True,
            )
            for line in summarize(payload):
                print("  " + line, flush=True)
            if self.out is not None:
                record = {"webhook_id": msg_id, "received_at": time.time(), "payload": payload}
                with self.out.open("a", encoding="utf-8") as f:
                    f.write(json.dumps(record) + "\n")
        self._answer(204, "")

    def _answer(self, status: int, text: str) -> None:
        data = text.encode()
        self.send_response(status)
        if data:
            self.send_header("content-type", "text/plain; charset=utf-8")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        if data:
            self.wfile.write(data)

    def log_message(self, *_args: Any) -> None:  # printed above, in our own words
        pass


def run_sink(args: argparse.Namespace, environ: dict[str, str]) -> int:
    """Serve until interrupted."""
    handler = type("Sink", (_Sink,), {"verifier": _verifier(args, environ)})
    handler.out = Path(args.out) if args.out else None
    try:
        server = http.server.ThreadingHTTPServer((args.host, args.port), handler)
    except OSError as exc:
        print(
            f"streamops webhook sink: cannot listen on {args.host}:{args.port} ({exc.strerror}); "
            "pick another --port",
            file=sys.stderr,
        )
        return 1
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    print(f"webhook sink listening on http://{args.host}:{server.server_port}/ (pid {os.getpid()})",
          flush=True)  # fmt: skip
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    print("webhook sink stopped", flush=True)
    return 0
