"""The registry CLI commands: argument parsing, settings, and error messages (no network)."""

from __future__ import annotations

import argparse

import httpx
import pytest

from services.cli.__main__ import build_parser, main
from services.cli.api_client import ApiClient
from services.cli.cli_settings import CliSettings
from services.cli.deploy_cmd import _model, _request_body
from services.common.errors import ConfigError, StreamopsError
from services.common.settings import Secret, load_settings

pytestmark = pytest.mark.unit


def _client(handler) -> ApiClient:
    return ApiClient(
        "http://registry.test", Secret("tok-123"), transport=httpx.MockTransport(handler)
    )


def test_model_spec_parsing():
    assert _model("credit:2") == {"name": "credit", "version": 2}
    assert _model("my:model:3") == {"name": "my:model", "version": 3}
    assert _model("a" * 64) == {"model_id": "a" * 64}
    with pytest.raises(argparse.ArgumentTypeError, match="NAME:VERSION"):
        _model("credit")


def test_request_body_and_missing_model():
    args = build_parser().parse_args(
        ["deploy", "request", "credit", "--model", "credit:1", "--reason", "go", "--auto-approve"]
    )
    body = _request_body(args)
    assert body["model"] == {"name": "credit", "version": 1}
    assert body["setup"] == {"policy": {"auto_approve": True}} and body["reason"] == "go"
    args = build_parser().parse_args(["deploy", "request", "credit", "--reason", "go"])
    with pytest.raises(ConfigError, match="needs --model"):
        _request_body(args)
    assert main(["deploy", "request", "credit", "--reason", "go"]) == 2


def test_token_is_a_cli_setting_and_typos_are_refused():
    s = load_settings(
        CliSettings,
        "cli",
        {"STREAMOPS_CLI_TOKEN": "tok-123", "STREAMOPS_CLI_REGISTRY_URL": "http://r:1"},
    )
    assert s.token.reveal() == "tok-123" and "tok-123" not in s.describe()
    with pytest.raises(ConfigError, match="unknown setting STREAMOPS_CLI_TOKN"):
        load_settings(CliSettings, "cli", {"STREAMOPS_CLI_TOKN": "x"})


def test_client_sends_the_token_and_explains_errors():
    seen = {}

    def handler(request: httpx.Request) -> httpx.Response:
        seen["auth"] = request.headers.get("authorization")
        if request.url.path == "/models":
            return httpx.Response(200, json=[{"name": "credit"}])
        if request.url.path == "/secret":
            return httpx.Response(401, json={"error": "unauthorized", "message": "bad token"})
        return httpx.Response(403, json={"error": "forbidden", "message": "ask another owner"})

    client = _client(handler)
    assert client.get("/models") == [{"name": "credit"}] and seen["auth"] == "Bearer tok-123"
    with pytest.raises(StreamopsError, match="403: ask another owner"):
        client.post("/requests/x/approve")
    with pytest.raises(StreamopsError, match="STREAMOPS_CLI_TOKEN"):
        client.get("/secret")


def test_registry_down_says_how_to_start_it():
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    with pytest.raises(StreamopsError, match="not reachable.*python -m services.registry"):
        _client(handler).get("/models")


def test_every_action_parses():
    parser = build_parser()
    for argv in (
        ["models", "list"],
        ["models", "show", "credit", "2"],
        ["models", "compare", "credit", "1", "2"],
        ["models", "lineage", "abc"],
        ["deploy", "approve", "r1"],
        ["deploy", "reject", "r1", "--reason", "no"],
        ["deploy", "history", "credit"],
        ["registry", "rebuild", "--replace"],
    ):
        assert callable(parser.parse_args(argv).func)
    with pytest.raises(SystemExit):
        parser.parse_args(["deploy", "reject", "r1"])  # a rejection needs a reason
