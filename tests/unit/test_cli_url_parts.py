"""The CLI puts names in API URLs as one escaped path segment each (issue 28; no network).

Before, `streamops get deployment 'a/../b?c#d e'` asked for `/deployments/a/../b` with `c` as a
query and `d e` as a fragment: another resource than the one named.
"""

from __future__ import annotations

import doctest
from typing import Any

import httpx
import pytest

from services.cli import api_client
from services.cli.__main__ import main
from services.cli.api_client import ApiClient, url_part
from services.common.settings import Secret

pytestmark = pytest.mark.unit

NAME = "a/../b?c#d e"
ESCAPED = "a%2F..%2Fb%3Fc%23d%20e"
# One answer with what each command reads from its answer.
ANSWER = {
    "requests": [],
    "versions": [],
    "request_id": "r",
    "status": "approved",
    "deployment": "d",
    "fingerprint": "f",
    "created_by": "me",
    "id": "s",
}


@pytest.fixture()
def sent(monkeypatch) -> list[str]:
    """The raw path (and query) of every call the commands make."""
    paths: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        paths.append(request.url.raw_path.decode())
        if request.url.path.endswith("/history"):
            return httpx.Response(200, json=[])
        return httpx.Response(200, json=ANSWER)

    def client(cls: Any, args: Any, environ: Any) -> ApiClient:
        return ApiClient(
            "http://api.test", Secret("t" * 16), transport=httpx.MockTransport(handler)
        )

    monkeypatch.setattr(ApiClient, "registry", classmethod(client))
    monkeypatch.setattr(ApiClient, "alerting", classmethod(client))
    return paths


def test_url_part_escapes_every_reserved_character_and_dot_segments():
    assert url_part(NAME) == ESCAPED
    assert url_part("..") == "%2E%2E" and url_part(".") == "%2E"
    assert url_part("...") == "..." and url_part("credit-v2.1") == "credit-v2.1"
    assert url_part(7) == "7"
    assert doctest.testmod(api_client).failed == 0


@pytest.mark.parametrize(
    ("argv", "paths"),
    [
        (["get", "deployment", NAME, "-o", "json"], [f"/deployments/{ESCAPED}"]),
        (["models", "show", NAME, "--json"], [f"/models/{ESCAPED}"]),
        (["models", "show", NAME, "2"], [f"/models/{ESCAPED}/versions/2"]),
        (["models", "compare", NAME, "1", "2", "--json"], [f"/compare/{ESCAPED}?a=1&b=2"]),
        (["models", "lineage", NAME, "--json"], [f"/lineage/{ESCAPED}"]),
        (
            ["deploy", "history", NAME, "--json"],
            [f"/deployments/{ESCAPED}/history", f"/deployments/{ESCAPED}"],
        ),
        (
            ["deploy", "request", NAME, "--model", "credit:1", "--reason", "go", "--json"],
            [f"/deployments/{ESCAPED}/requests"],
        ),
        (["deploy", "approve", NAME, "--json"], [f"/requests/{ESCAPED}/approve"]),
        (["deploy", "reject", "..", "--reason", "no", "--json"], ["/requests/%2E%2E/reject"]),
        (["alerts", "ack", NAME, "--json"], [f"/api/v1/alerts/{ESCAPED}/ack"]),
        (["silences", "expire", NAME, "--json"], [f"/api/v1/silences/{ESCAPED}"]),
    ],
)
def test_each_command_sends_the_name_as_one_segment(sent, argv, paths, capsys):
    assert main(argv) == 0, capsys.readouterr().err
    assert sent == paths


def test_apply_sends_the_file_name_as_one_segment(sent, tmp_path, capsys):
    doc = tmp_path / "d.yaml"
    doc.write_text(f"name: '{NAME}'\nchampion: credit:1\n")
    assert main(["apply", "-f", str(doc), "--wait", "0"]) == 0, capsys.readouterr().err
    assert sent == [f"/deployments/{ESCAPED}/requests"]
