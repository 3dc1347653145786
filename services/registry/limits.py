"""What the registry's API accepts at its edge: names, body size, text length, method labels.

A deployment or model name a write carries must match `NAME_PATTERN` (1 to 128 characters of
letters, digits, `.`, `_` and `-`, starting with a letter or digit, so `..` is no name), a
request body is at most `MAX_BODY_BYTES` (1 MiB, refused with 413 before it is parsed) and a
`reason` at most `MAX_REASON_CHARS`. Names travel in URLs, Redis keys, Kafka keys and the
dashboard; the bounds keep a hostile write from reaching any of them.

>>> check_name("credit-v2.1", "deployment")
'credit-v2.1'
>>> try:
...     check_name("a\\x07b", "model.name")
... except InvalidField as exc:
...     print(exc.field, "|", str(exc)[:46])
model.name | model.name: 'a\\x07b' is not a valid name: 1 to
>>> method_label("GET"), method_label("BREW")
('GET', 'other')
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.registry.config_fields import InvalidField

NAME_PATTERN = r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}"
NAME_RULE = (
    "1 to 128 characters of letters, digits, '.', '_' and '-', starting with a letter or "
    f"digit ({NAME_PATTERN})"
)
MAX_BODY_BYTES = 1024 * 1024
MAX_REASON_CHARS = 2000  # the length the audit trail keeps of a retrain outcome's reason too
# Any other method is one label value, "other": a made-up method must not make a new series.
METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})
_NAME = re.compile(NAME_PATTERN)
_SHOWN = 40  # characters of a refused name quoted back


def check_name(value: Any, field: str) -> str:
    """`value` if it is a valid deployment or model name; raises InvalidField naming `field`."""
    if not isinstance(value, str):
        raise InvalidField(field, f"must be a name ({NAME_RULE}), not {value!r}"[:300])
    if not _NAME.fullmatch(value):
        shown = repr(value[:_SHOWN]) + ("..." if len(value) > _SHOWN else "")
        raise InvalidField(field, f"{shown} is not a valid name: {NAME_RULE}")
    return value


def check_names(deployment: str, change: Mapping[str, Any]) -> Mapping[str, Any]:
    """`change` (a change request's body) if the deployment's name and every model name it
    carries follow the rule; raises InvalidField naming the first that does not."""
    check_name(deployment, "deployment")
    model = change.get("model")
    if isinstance(model, Mapping) and model.get("name") is not None:
        check_name(model["name"], "model.name")
    for i, c in enumerate(change.get("challengers") or []):
        model = c.get("model") if isinstance(c, Mapping) else None
        if isinstance(model, Mapping) and model.get("name") is not None:
            check_name(model["name"], f"challengers[{i}].model.name")
    return change


def method_label(method: str) -> str:
    """The latency histogram's method label: the method if standard, else "other"."""
    return method if method in METHODS else "other"


def _declared_length(scope: Scope) -> int | None:
    for key, value in scope.get("headers", ()):
        if key == b"content-length" and value.isdigit():
            return int(value)
    return None


class BodyLimit:
    """ASGI middleware: a request body over `limit` bytes gets 413 `{error: too_large, message}`
    before the application reads any of it (a declared Content-Length is checked first; a
    chunked body is counted as it arrives). The body is read whole, at most `limit` bytes, and
    handed on as one message."""

    def __init__(self, app: ASGIApp, limit: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _declared_length(scope)
        if declared is not None and declared > self.limit:
            await self._refuse(send)
            return
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away: there is no one to answer
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                await self._refuse(send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        whole: Message | None = {"type": "http.request", "body": b"".join(chunks)}

        async def replay() -> Message:
            nonlocal whole
            if whole is None:
                return await receive()  # after the body: disconnects reach the application
            message, whole = whole, None
            return message

        await self.app(scope, replay, send)

    async def _refuse(self, send: Send) -> None:
        body = json.dumps(
            {
                "error": "too_large",
                "message": f"the request body is over {self.limit} bytes "
                f"({self.limit / 2**20:g} MiB), the registry's limit; send a smaller one",
            },
            separators=(",", ":"),
        ).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": body})
