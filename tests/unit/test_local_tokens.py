"""The local stack's tokens: made once (0600), printed once, read by the registry and alerting;
short tokens are refused at start."""

from __future__ import annotations

import argparse
import doctest
import stat
import threading

import pytest

from services.alerting.app import api_token
from services.alerting.config import AlertingSettings
from services.cli import infra_cmd
from services.cli.api_client import ApiClient
from services.common import local_tokens, secret_files
from services.common.errors import ConfigError
from services.common.settings import Secret
from services.registry.app import api_tokens
from services.registry.config import RegistrySettings
from services.registry.roles import Role, TokenTable

pytestmark = pytest.mark.unit

HOW_TO = 'python -c "import secrets; print(secrets.token_urlsafe(24))"'


def _mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_doctests():
    assert doctest.testmod(local_tokens).failed == 0
    assert doctest.testmod(secret_files).failed == 0


def test_the_first_up_prints_working_tokens_and_later_ones_only_where_they_are(tmp_path, capsys):
    infra_cmd._tokens(str(tmp_path))
    first = capsys.readouterr().out
    tokens, created = local_tokens.ensure_registry(tmp_path)
    alerting, alerting_created = local_tokens.ensure_alerting(tmp_path)
    assert not created and not alerting_created
    assert _mode(local_tokens.registry_path(tmp_path)) == 0o600
    assert _mode(local_tokens.alerting_path(tmp_path)) == 0o600
    assert tokens["viewer"] in first and tokens["owner"] in first
    assert f"export STREAMOPS_CLI_TOKEN={tokens['owner']}" in first
    assert alerting in first and str(local_tokens.alerting_path(tmp_path)) in first
    infra_cmd._tokens(str(tmp_path))
    again = capsys.readouterr().out
    assert tokens["owner"] not in again and alerting not in again
    assert str(local_tokens.registry_path(tmp_path)) in again
    assert str(local_tokens.alerting_path(tmp_path)) in again

    # a registry with no tokens setting takes these, and they authenticate with their roles
    table = TokenTable.parse(api_tokens(RegistrySettings(var_dir=str(tmp_path))))
    assert table.authenticate(tokens["viewer"]).role == Role.VIEWER
    assert table.authenticate(tokens["owner"]).role == Role.OWNER
    assert table.authenticate("guess") is None
    # an explicit setting wins over the file
    given = TokenTable.parse(
        api_tokens(RegistrySettings(var_dir=str(tmp_path), tokens=Secret("a:owner:" + "b" * 16)))
    )
    assert len(given) == 1 and given.authenticate(tokens["owner"]) is None


def test_the_alerting_token_file_is_made_once_0600_and_kept(tmp_path, caplog):
    settings = AlertingSettings(var_dir=str(tmp_path))
    caplog.set_level("INFO")
    first = api_token(settings)
    where = local_tokens.alerting_path(tmp_path)
    assert where == tmp_path / "alerting" / "token"
    assert _mode(where) == 0o600
    assert where.read_text().strip() == first.reveal()
    assert len(first.reveal()) >= local_tokens.MIN_LENGTH
    assert str(where) in caplog.text and first.reveal() not in caplog.text
    assert api_token(settings) == first, "a restart reads the same token"
    # a configured token wins over the file
    configured = Secret("c" * 16)
    assert api_token(AlertingSettings(var_dir=str(tmp_path), api_token=configured)) == configured


def test_two_services_starting_at_once_agree_on_one_token(tmp_path):
    got: list[str] = []
    threads = [
        threading.Thread(target=lambda: got.append(local_tokens.ensure_alerting(tmp_path)[0]))
        for _ in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(got)) == 1 and got[0] == secret_files.read(local_tokens.alerting_path(tmp_path))


@pytest.mark.parametrize("length", [0, 10, 15])
def test_a_short_alerting_token_is_refused_at_start(tmp_path, length):
    short = AlertingSettings(var_dir=str(tmp_path), api_token=Secret("x" * length))
    if length == 0:  # empty setting: the file is used; a short file is refused the same way
        secret_files.create(local_tokens.alerting_path(tmp_path), "too-short\n")
    with pytest.raises(ConfigError) as info:
        api_token(short)
    message = str(info.value)
    assert "shorter than 16 characters" in message and HOW_TO in message
    assert ("STREAMOPS_ALERTING_API_TOKEN" in message) == (length > 0)
    if length == 0:
        assert str(local_tokens.alerting_path(tmp_path)) in message and "too-short" not in message
    assert api_token(AlertingSettings(var_dir=str(tmp_path), api_token=Secret("x" * 16)))


def test_the_cli_uses_the_local_alerting_token_unless_one_is_given(tmp_path, capsys):
    token, _ = local_tokens.ensure_alerting(tmp_path)
    env = {"STREAMOPS_VAR_DIR": str(tmp_path), "STREAMOPS_CLI_TOKEN": "registry-owner-token-xx"}

    def sent(environ, given=None) -> str:
        client = ApiClient.alerting(argparse.Namespace(alerting_url=None, token=given), environ)
        return client._http.headers.get("authorization", "")

    assert sent(env) == f"Bearer {token}", "the file wins over the registry's STREAMOPS_CLI_TOKEN"
    explicit = {**env, "STREAMOPS_CLI_ALERTING_TOKEN": "alerting-env-token-xx"}
    assert sent(explicit) == "Bearer alerting-env-token-xx"
    assert capsys.readouterr().err == ""
    assert sent(env, "flag-token-0123456789") == "Bearer flag-token-0123456789"
    assert "--token is visible to every local user" in capsys.readouterr().err
    # no local file: the shared STREAMOPS_CLI_TOKEN, as before
    elsewhere = {**env, "STREAMOPS_VAR_DIR": str(tmp_path / "none")}
    assert sent(elsewhere) == "Bearer registry-owner-token-xx"
