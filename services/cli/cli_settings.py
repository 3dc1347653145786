"""The settings every `streamops` command reads (`STREAMOPS_*`, then `STREAMOPS_CLI_*`).

Defined in services/common/cli_settings.py, shared with the Python client (`import streamops`).
"""

from __future__ import annotations

from services.common.cli_settings import CliSettings, cli_settings

__all__ = ["CliSettings", "cli_settings"]
