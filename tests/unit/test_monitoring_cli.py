"""`streamops infra up|down|status` with Prometheus installed, missing or failing to start."""

from __future__ import annotations

import argparse
import types

import pytest

from services.cli import infra_cmd

pytestmark = pytest.mark.unit


class Scripts:
    """Stands in for the infra scripts: records (part, action), answers from `results`."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []
        self.results: dict[tuple[str, str], int] = {}

    def __call__(self, part: str, action: str, environ: dict[str, str]) -> int:
        self.calls.append((part, action))
        return self.results.get((part, action), 0)


@pytest.fixture
def scripts(monkeypatch: pytest.MonkeyPatch, tmp_path) -> Scripts:
    """The infra scripts, Kafka's admin and the settings replaced by stand-ins."""
    fake = Scripts()
    settings = types.SimpleNamespace(
        topic_prefix="streamops.",
        kafka_bootstrap="127.0.0.1:9092",
        redis_host="h",
        redis_port=1,
        var_dir=str(tmp_path),
        deployment_keys=lambda: tmp_path / "keys" / "registry",
    )
    admin = types.SimpleNamespace(admin=lambda: None)
    monkeypatch.setattr(infra_cmd, "_script", fake)
    monkeypatch.setattr(infra_cmd, "cli_settings", lambda environ: settings)
    monkeypatch.setattr(infra_cmd, "ensure_topics", lambda admin, namer: {})
    monkeypatch.setattr(infra_cmd.KafkaConfig, "from_settings", lambda *args: admin)
    return fake


def _run(action: str) -> int:
    return infra_cmd.run(argparse.Namespace(action=action), {"PATH": "/nowhere"})


def installed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(infra_cmd, "_prometheus_installed", lambda environ: True)


def test_up_starts_prometheus_after_kafka_and_redis_and_says_where(scripts, monkeypatch, capsys):
    installed(monkeypatch)
    assert _run("up") == 0
    assert scripts.calls == [("kafka", "start"), ("redis", "start"), ("prometheus", "start")]
    assert "Prometheus: http://127.0.0.1:9090" in capsys.readouterr().out


def test_up_without_prometheus_says_how_to_get_it_and_succeeds(scripts, capsys):
    assert _run("up") == 0  # PATH=/nowhere: not installed
    assert ("prometheus", "start") not in scripts.calls
    out = capsys.readouterr().out
    assert out.count("Prometheus:") == 1 and "apt-get install prometheus" in out


def test_a_prometheus_that_fails_to_start_does_not_fail_up(scripts, monkeypatch, capsys):
    installed(monkeypatch)
    scripts.results[("prometheus", "start")] = 1
    assert _run("up") == 0
    assert "Prometheus: did not start" in capsys.readouterr().out


def test_down_stops_prometheus_first_and_status_reports_without_judging_it(scripts, monkeypatch):
    assert _run("down") == 0
    assert scripts.calls == [("prometheus", "stop"), ("redis", "stop"), ("kafka", "stop")]
    scripts.calls.clear()
    installed(monkeypatch)
    scripts.results[("prometheus", "status")] = 3
    assert _run("status") == 0, "Kafka and Redis decide; Prometheus is optional"
    assert scripts.calls == [("kafka", "status"), ("redis", "status"), ("prometheus", "status")]


def test_up_makes_the_registry_signing_key_once_and_says_who_trusts_it(scripts, tmp_path, capsys):
    assert _run("up") == 0
    (made,) = (tmp_path / "keys" / "registry").glob("*.key")
    first = capsys.readouterr().out
    assert f"registry signing key {made.stem} (made now)" in first
    assert "scorers and drift trust" in first and "STREAMOPS_DEPLOYMENT_KEYS_DIR" in first
    assert _run("up") == 0
    assert [p.stem for p in (tmp_path / "keys" / "registry").glob("*.key")] == [made.stem]
    assert f"registry signing key {made.stem} (kept)" in capsys.readouterr().out
