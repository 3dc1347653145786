"""The `streamops` package: what it exports, that importing it stays light, and that it builds on
services/common only (never on the CLI or another service; the trainer only inside
`publish_model`)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

CLIENT = Path(__file__).resolve().parents[2] / "services" / "client"


def _imports(path: Path) -> list[tuple[str, bool]]:
    """(module, at top level) of every import in a file."""
    tree = ast.parse(path.read_text())
    top = set(map(id, tree.body))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            out.append((node.module, id(node) in top))
        elif isinstance(node, ast.Import):
            out += [(alias.name, id(node) in top) for alias in node.names]
    return out


def test_the_client_imports_common_and_never_the_cli_or_a_service():
    for path in sorted(CLIENT.glob("*.py")):
        for module, top_level in _imports(path):
            if not module.startswith("services."):
                continue
            package = module.split(".")[1]
            if package == "trainer":
                assert path.name == "publishing.py" and not top_level, (path.name, module)
            else:
                assert package in ("client", "common"), (path.name, module)


def test_import_streamops_is_light_and_exports_the_client():
    code = (
        "import sys, streamops\n"
        "heavy = [m for m in ('sklearn', 'onnxruntime', 'services.trainer', 'services.cli')"
        " if m in sys.modules]\n"
        "print(heavy, sorted(streamops.__all__))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    assert out.startswith("[] "), out
    for name in ("Client", "DeliveryError", "InvalidRecord", "ApiNotFound", "publish_model"):
        assert f"'{name}'" in out
