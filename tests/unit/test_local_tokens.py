"""The local stack's registry tokens: made once (0600), printed once, read by the registry."""

from __future__ import annotations

import doctest
import stat

import pytest

from services.cli import infra_cmd
from services.common import local_tokens
from services.common.settings import Secret
from services.registry.app import api_tokens
from services.registry.config import RegistrySettings
from services.registry.roles import Role, TokenTable

pytestmark = pytest.mark.unit


def test_doctests():
    assert doctest.testmod(local_tokens).failed == 0


def test_the_first_up_prints_working_tokens_and_later_ones_only_where_they_are(tmp_path, capsys):
    infra_cmd._tokens(str(tmp_path))
    first = capsys.readouterr().out
    tokens, created = local_tokens.ensure(tmp_path)
    assert not created
    assert stat.S_IMODE(local_tokens.path(tmp_path).stat().st_mode) == 0o600
    assert tokens["viewer"] in first and tokens["owner"] in first
    assert f"export STREAMOPS_CLI_TOKEN={tokens['owner']}" in first
    infra_cmd._tokens(str(tmp_path))
    again = capsys.readouterr().out
    assert tokens["owner"] not in again and str(local_tokens.path(tmp_path)) in again

    # a registry with no tokens setting takes these, and they authenticate with their roles
    table = TokenTable.parse(api_tokens(RegistrySettings(var_dir=str(tmp_path))))
    assert table.authenticate(tokens["viewer"]).role == Role.VIEWER
    assert table.authenticate(tokens["owner"]).role == Role.OWNER
    assert table.authenticate("guess") is None
    # an explicit setting wins over the file
    given = TokenTable.parse(
        api_tokens(RegistrySettings(var_dir=str(tmp_path), tokens=Secret("a:owner:abcdefgh")))
    )
    assert len(given) == 1 and given.authenticate(tokens["owner"]) is None
