"""`streamops train` argument errors and `streamops keys init`, without a broker."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.cli.__main__ import main
from services.common import signing

pytestmark = pytest.mark.unit


@pytest.fixture()
def isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No STREAMOPS_* from the caller; var_dir in a temporary directory."""
    import os

    for key in list(os.environ):
        if key.startswith("STREAMOPS_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("STREAMOPS_VAR_DIR", str(tmp_path))
    # Nothing listens here: a test that reached Kafka would fail instead of passing by luck.
    monkeypatch.setenv("STREAMOPS_KAFKA_BOOTSTRAP", "127.0.0.1:1")
    return tmp_path


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--model-name", "m"], "exactly one of --dataset or --from-stream"),
        (
            ["--model-name", "m", "--dataset", "builtin:credit", "--from-stream"],
            "exactly one of --dataset or --from-stream",
        ),
        (["--model-name", "m", "--from-stream", "--last", "5"], "needs --deployment D"),
        (["--model-name", "m", "--from-stream", "--deployment", "d"], "--last N"),
        (
            ["--model-name", "m", "--from-stream", "--deployment", "d", "--last", "0"],
            "--last must be at least 1",
        ),
        (["--model-name", "m", "--dataset", "x.csv", "--last", "5"], "go with --from-stream"),
        (["--model-name", "m", "--dataset", "x.csv", "--trials", "0"], "--trials must be"),
        (["--model-name", " ", "--dataset", "x.csv"], "--model-name must not be empty"),
    ],
)
def test_inconsistent_flags_exit_2_with_the_reason(
    isolated: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    assert main(["train", *argv]) == 2
    assert message in capsys.readouterr().err


def test_unknown_estimator_is_an_argument_error(isolated: Path) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["train", "--model-name", "m", "--dataset", "x.csv", "--estimator", "svm"])
    assert exc.value.code == 2


def test_missing_signing_key_tells_to_run_keys_init(
    isolated: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["train", "--model-name", "m", "--dataset", "builtin:credit?rows=100"]) == 2
    err = capsys.readouterr().err
    assert "no signing key" in err and "streamops keys init" in err


def test_keys_init_prints_id_and_public_path_never_the_private_key(
    isolated: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["keys", "init"]) == 0
    out = capsys.readouterr().out
    keys_dir = isolated / "keys"
    (private,) = keys_dir.glob("*.key")
    key_id = private.stem
    assert f"key id      {key_id}" in out
    assert str(keys_dir / f"{key_id}.pub") in out
    assert "PRIVATE KEY" not in out and private.read_text().splitlines()[1] not in out
    assert private.stat().st_mode & 0o777 == 0o600
    assert key_id in signing.load_public_keys(keys_dir)


def test_keys_init_refuses_to_overwrite_without_force(
    isolated: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["keys", "init", "--dir", str(isolated / "k")]) == 0
    (first,) = (isolated / "k").glob("*.key")
    before = first.read_bytes()
    assert main(["keys", "init", "--dir", str(isolated / "k")]) == 1
    assert "--force" in capsys.readouterr().err
    assert first.read_bytes() == before
    assert main(["keys", "init", "--dir", str(isolated / "k"), "--force"]) == 0
    (second,) = (isolated / "k").glob("*.key")
    assert second.stem != first.stem
    # The old public key stays, so models signed before the rotation still verify.
    assert {first.stem, second.stem} <= set(signing.load_public_keys(isolated / "k"))
