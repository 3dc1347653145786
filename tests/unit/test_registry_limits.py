"""The registry API's input limits on their own: the name rule and the body limit's ASGI side."""

from __future__ import annotations

import asyncio
import doctest
import json
from typing import Any

import pytest

from services.registry import limits
from services.registry.config_fields import InvalidField
from services.registry.limits import BodyLimit, check_name, check_names

pytestmark = pytest.mark.unit


def test_doctests():
    assert doctest.testmod(limits).failed == 0


@pytest.mark.parametrize("name", ["credit", "a", "v1.2_b-3", "A" * 128, "0x"])
def test_names_that_follow_the_rule(name):
    assert check_name(name, "deployment") == name


@pytest.mark.parametrize(
    "name",
    ["", ".", "..", ".hidden", "-x", "_x", "A" * 129, "a b", "a/b", "a\x07b", "é", "a\n", 7, None],
)
def test_names_that_break_it_are_refused_with_the_field_named(name):
    with pytest.raises(InvalidField) as caught:
        check_name(name, "model.name")
    assert caught.value.field == "model.name" and limits.NAME_PATTERN in str(caught.value)


def test_every_name_a_change_carries_is_checked():
    change = {"model": {"name": "credit"}, "challengers": [{"model": {"name": "ok"}}, "x"]}
    assert check_names("credit", change) is change
    bad = {**change, "challengers": [{"model": {"name": "ok"}}, {"model": {"name": ".."}}]}
    with pytest.raises(InvalidField) as caught:
        check_names("credit", bad)
    assert caught.value.field == "challengers[1].model.name"


class Asgi:
    """Runs BodyLimit over an app that reads the whole body and echoes its size."""

    def __init__(self, limit: int) -> None:
        self.read: list[bytes] = []
        self.limit = limit

    async def app(self, scope: Any, receive: Any, send: Any) -> None:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        self.read.append(body)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"%d" % len(body)})

    def call(self, chunks: list[bytes], headers: list[tuple[bytes, bytes]]) -> list[dict]:
        incoming = [
            {"type": "http.request", "body": c, "more_body": i < len(chunks) - 1}
            for i, c in enumerate(chunks)
        ]
        sent: list[dict] = []

        async def receive() -> dict:
            return incoming.pop(0) if incoming else {"type": "http.disconnect"}

        async def send(message: dict) -> None:
            sent.append(message)

        scope = {"type": "http", "method": "POST", "path": "/", "headers": headers}
        asyncio.run(BodyLimit(self.app, self.limit)(scope, receive, send))
        self.left = len(incoming)
        return sent


def test_a_declared_length_over_the_limit_is_refused_without_reading_the_body():
    asgi = Asgi(limit=10)
    sent = asgi.call([b"x" * 11], [(b"content-length", b"11")])
    assert sent[0]["status"] == 413 and asgi.left == 1 and asgi.read == []
    assert json.loads(sent[1]["body"])["error"] == "too_large"


def test_a_chunked_body_is_counted_and_refused_once_over_the_limit():
    asgi = Asgi(limit=10)
    sent = asgi.call([b"x" * 4, b"x" * 4, b"x" * 4, b"x" * 4], [])
    assert sent[0]["status"] == 413 and asgi.read == []
    assert asgi.left == 1  # it stopped reading at the third chunk
    ok = Asgi(limit=10)
    assert ok.call([b"x" * 4, b"x" * 6], [])[1]["body"] == b"10"
    assert ok.read == [b"x" * 10]  # handed on whole


def test_a_client_gone_before_its_body_ends_gets_no_answer():
    asgi = Asgi(limit=10)
    assert asgi.call([], [(b"content-length", b"5")]) == [] and asgi.read == []
