"""The demo keeps its secrets off command lines and in 0600 files."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from services.cli import demo_plan
from services.cli.cli_settings import cli_settings
from services.cli.demo_cmd import write_webhook_secret
from services.cli.demo_plan import DemoPlan
from services.common import secret_files

pytestmark = pytest.mark.unit


def test_no_service_command_line_holds_a_secret_and_the_files_are_0600(tmp_path: Path) -> None:
    plan = DemoPlan("demo-x.", tmp_path).with_ports()
    write_webhook_secret(plan)
    secret = secret_files.read(plan.sink_secret_file)
    assert secret is not None and secret.startswith("whsec_")
    assert f'secret: "{secret}"' in plan.alerting_config_file.read_text()
    for path in (plan.sink_secret_file, plan.alerting_config_file):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path

    commands = demo_plan.service_commands(plan, cli_settings({}))
    argv = [arg for _name, _module, args in commands for arg in args]
    assert secret not in " ".join(argv) and secret[6:20] not in " ".join(argv)
    assert not any(flag in argv for flag in ("--secret", "--token", "--api-token", "--tokens"))
    assert not any("password" in arg for arg in argv)
    (sink,) = [args for name, _module, args in commands if name == "sink"]
    assert sink[sink.index("--secret-file") + 1] == str(plan.sink_secret_file)

    write_webhook_secret(plan)  # a second run replaces the secret, still 0600
    assert secret_files.read(plan.sink_secret_file) != secret
    assert stat.S_IMODE(plan.sink_secret_file.stat().st_mode) == 0o600
