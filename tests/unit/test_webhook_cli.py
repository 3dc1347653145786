"""`streamops webhook secret|verify|sink`: what a receiver runs."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

import httpx
import pytest

from services.alerting.webhook_signing import sign
from services.cli import webhook_cmd
from services.cli.__main__ import main
from services.common import secret_files
from tests.alerting_support import SECRET, free_port
from tests.kafka_support import REPO

pytestmark = pytest.mark.unit

BODY = json.dumps(
    {"version": "4", "status": "firing", "receiver": "ops", "groupKey": "g", "alerts": [
        {"status": "firing", "labels": {"alertname": "data_drift:psi"}, "fingerprint": "f" * 16,
         "streamops": {"deployment": "credit", "model_version": 2, "value": 0.4,
                       "threshold": 0.25}}]}
).encode()  # fmt: skip


def test_secret_makes_a_valid_secret(capsys) -> None:
    assert main(["webhook", "secret"]) == 0
    secret = capsys.readouterr().out.strip()
    headers = sign(secret, "msg_1", int(time.time()), b"x")
    assert secret.startswith("whsec_") and headers["webhook-id"] == "msg_1"


def test_verify_accepts_the_authentic_and_names_what_is_wrong(tmp_path, capsys) -> None:
    body = tmp_path / "body.json"
    body.write_bytes(BODY)
    headers = sign(SECRET, "msg_42", int(time.time()), BODY)
    flags = [a for k, v in headers.items() for a in ("--header", f"{k}: {v}")]
    assert main(["webhook", "verify", "--secret", SECRET, "--body", str(body), *flags]) == 0
    printed = capsys.readouterr()
    assert "valid: webhook-id msg_42" in printed.out
    assert "--secret is visible to every local user" in printed.err
    body.write_bytes(BODY.replace(b"0.4", b"0.1"))
    assert main(["webhook", "verify", "--secret", SECRET, "--body", str(body), *flags]) == 1
    assert "signature_mismatch" in capsys.readouterr().err


def test_sink_prints_accepted_alerts_dedupes_ids_and_refuses_forgeries(tmp_path) -> None:
    port = free_port()
    out = tmp_path / "alerts.jsonl"
    secret_file = tmp_path / "secret"
    secret_files.create(secret_file, f"whsec_{'A' * 44}\n{SECRET}\n")  # rotation: two secrets
    sink = subprocess.Popen(
        [sys.executable, "-m", "services.cli", "webhook", "sink", "--port", str(port),
         "--secret-file", str(secret_file), "--out", str(out)],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}/"
        for _ in range(100):
            try:
                httpx.get(url, timeout=0.5)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        headers = sign(SECRET, "msg_7", int(time.time()), BODY)
        assert httpx.post(url, content=BODY, headers=headers).status_code == 204
        assert httpx.post(url, content=BODY, headers=headers).status_code == 200  # redelivery
        forged = {**headers, "webhook-id": "msg_8"}
        assert httpx.post(url, content=BODY, headers=forged).status_code == 401
        lines = out.read_text().splitlines()
        assert [json.loads(line)["webhook_id"] for line in lines] == ["msg_7"]
    finally:
        sink.terminate()
        printed, _ = sink.communicate(timeout=10)
    assert sink.returncode == 0, printed
    assert "FIRING" in printed and "deployment=credit" in printed and "REJECTED" in printed
    assert SECRET not in " ".join(sink.args) and "visible to every local user" not in printed


def test_the_secret_comes_from_a_file_or_the_environment(tmp_path, capsys) -> None:
    body = tmp_path / "body.json"
    body.write_bytes(BODY)
    headers = sign(SECRET, "msg_43", int(time.time()), BODY)
    flags = [
        "--body",
        str(body),
        *[a for k, v in headers.items() for a in ("--header", f"{k}: {v}")],
    ]
    environ = {"STREAMOPS_WEBHOOK_SECRET": SECRET}
    assert webhook_cmd.run_verify(_parse(["webhook", "verify", *flags]), environ) == 0
    missing = _parse(["webhook", "verify", "--secret-file", str(tmp_path / "nope"), *flags])
    with pytest.raises(SystemExit, match="cannot read --secret-file"):
        webhook_cmd.run_verify(missing, environ)
    with pytest.raises(SystemExit, match="--secret-file"):
        webhook_cmd.run_verify(_parse(["webhook", "verify", *flags]), {})
    assert capsys.readouterr().err == ""


def _parse(argv: list[str]):
    parser = argparse.ArgumentParser()
    webhook_cmd.add_parser(parser.add_subparsers())
    return parser.parse_args(argv)
