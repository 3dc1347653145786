"""Deployments as code on a real registry (real broker, real Redis, HTTP on a real port):
`apply` files one change request that waits for an owner, `get -o yaml` prints the same format
back and applying it again changes nothing, and a bad field is named at its line in the file."""

from __future__ import annotations

import threading

import pytest

from services.cli.__main__ import main
from tests.registry_support import eventually

pytestmark = pytest.mark.integration

FILE = """\
name: credit
champion: credit:1
mode: shadow
window_seconds: 30
label_delay_seconds: 7200
thresholds:
  - metric: psi
    warning: 0.1
    critical: 0.25
  - metric: accuracy
    warning: 0.8
    critical: 0.7
    direction: {direction}
humility:
  - kind: uncertain
    low: 0.45
    high: 0.55
"""


def _cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def _as(url: str, token: str) -> tuple[str, ...]:
    return ("--registry-url", url, "--token", token)


def test_apply_waits_for_approval_and_get_round_trips(registry_url, tmp_path, capsys):
    from services.common.api_client import ApiClient
    from services.common.settings import Secret

    owner = ApiClient(registry_url, Secret("bo-token-16chars"))
    eventually(lambda: owner.get("/models"), 20, "credit listed")
    path = tmp_path / "deployment.yaml"
    path.write_text(FILE.format(direction="below"))

    def approve_when_pending() -> None:
        def pending() -> list[str]:
            rows = owner.get("/audit", deployment="credit")
            return [r["request_id"] for r in rows if r["action"] == "request"]

        (rid,) = eventually(pending, 20, "the apply request")
        owner.post(f"/requests/{rid}/approve", {"reason": "looks right"})

    approver = threading.Thread(target=approve_when_pending)
    approver.start()
    code, out, err = _cli(
        capsys, "apply", "-f", str(path), "--wait", "30", *_as(registry_url, "ed-token-16chars")
    )
    approver.join(30)
    assert code == 0, err
    assert "waiting for an owner's approval" in out and "approved" in out
    current = owner.get("/deployments/credit")
    assert current["window_seconds"] == 30 and current["revision"] == 1
    assert current["label_delay_seconds"] == 7200
    assert [t["direction"] for t in current["thresholds"]] == ["above", "below"]

    code, printed, err = _cli(
        capsys, "get", "deployment", "credit", "-o", "yaml", *_as(registry_url, "vi-token-16chars")
    )
    assert code == 0, err
    assert "champion: credit:1" in printed and "revision 1" in printed
    assert "label_delay_seconds: 7200" in printed
    fetched = tmp_path / "fetched.yaml"
    fetched.write_text(printed)
    code, out, err = _cli(
        capsys, "apply", "-f", str(fetched), *_as(registry_url, "ed-token-16chars")
    )
    assert code == 0 and "already as" in out, out + err
    audit = owner.get("/audit", deployment="credit")
    assert sorted(r["action"] for r in audit) == ["approve", "request"]  # nothing new filed

    # an edit of the fetched file is one pending change request, not applied until approved
    fetched.write_text(printed.replace("window_seconds: 30", "window_seconds: 60"))
    code, out, err = _cli(
        capsys, "apply", "-f", str(fetched), *_as(registry_url, "ed-token-16chars")
    )
    assert code == 0 and "pending" in out and "streamops deploy approve" in out, out + err
    assert owner.get("/deployments/credit")["window_seconds"] == 30


def test_an_invalid_file_names_its_line_and_field(registry_url, tmp_path, capsys):
    from services.common.api_client import ApiClient
    from services.common.settings import Secret

    eventually(
        lambda: ApiClient(registry_url, Secret("vi-token-16chars")).get("/models"), 20, "credit"
    )
    path = tmp_path / "deployment.yaml"
    path.write_text(FILE.format(direction="sideways"))
    code, _out, err = _cli(capsys, "apply", "-f", str(path), *_as(registry_url, "ed-token-16chars"))
    line = FILE.splitlines().index("    direction: {direction}") + 1
    assert code == 2, err
    assert f"{path}:{line}: " in err and "thresholds[1].direction" in err and "above, below" in err

    path.write_text(FILE.format(direction="below").replace("credit:1", "credit:9"))
    code, _out, err = _cli(capsys, "apply", "-f", str(path), *_as(registry_url, "ed-token-16chars"))
    assert code == 2 and f"{path}:2: " in err and "credit v9" in err, err

    path.write_text(FILE.format(direction="below").replace("credit:1", "credit"))
    code, _out, err = _cli(capsys, "apply", "-f", str(path), *_as(registry_url, "ed-token-16chars"))
    assert code == 2 and f"{path}:2: champion" in err and "NAME:VERSION" in err, err
