"""docker-compose.yml and its configs are consistent with the code (no Docker engine runs here)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from services.alerting.config import AlertingSettings
from services.common.settings import CommonSettings
from services.drift.config import DriftSettings
from services.registry.config import RegistrySettings
from services.scorer.config import ScorerSettings
from services.trainer.config import TrainerSettings
from tests.unit.test_monitoring import known_series, metric_names, run_promtool

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = "infra/docker/Dockerfile"
SERVICES = ("trainer", "scorer", "drift", "alerting", "registry")
METRICS_PORTS = {"trainer": 9101, "scorer": 9102, "drift": 9103, "alerting": 9104, "registry": 9105}
SETTINGS = {
    "trainer": TrainerSettings,
    "scorer": ScorerSettings,
    "drift": DriftSettings,
    "alerting": AlertingSettings,
    "registry": RegistrySettings,
}


def _yaml(relative: str) -> dict[str, Any]:
    return yaml.safe_load((REPO / relative).read_text())


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    """docker-compose.yml, parsed (YAML merge keys resolved)."""
    return _yaml("docker-compose.yml")["services"]


def _command(service: dict[str, Any]) -> list[str]:
    command = service.get("command", [])
    return command.split() if isinstance(command, str) else list(command)


def _runnable_service_folders() -> set[str]:
    folders = {p.parent.name for p in (REPO / "services").glob("*/__main__.py")}
    return folders | set(SERVICES)


def test_every_service_folder_runs_from_the_project_image(compose: dict[str, Any]) -> None:
    """Each runnable services/<name>/ has an entry running `python -m services.<name>`."""
    for name in sorted(_runnable_service_folders()):
        entries = [
            s for s in compose.values() if _command(s)[:3] == ["python", "-m", f"services.{name}"]
        ]
        assert entries, f"no compose service runs `python -m services.{name}`"
        for entry in entries:
            assert entry["build"]["dockerfile"] == DOCKERFILE
            assert entry["build"]["context"] == "."


def test_the_five_services_have_their_own_entries(compose: dict[str, Any]) -> None:
    """trainer, scorer, drift, alerting and registry are compose services of the same name."""
    for name in SERVICES:
        entry = compose[name]
        assert _command(entry) == ["python", "-m", f"services.{name}"]
        env = entry["environment"]
        assert env["STREAMOPS_KAFKA_BOOTSTRAP"] == "kafka:9092"
        assert env["STREAMOPS_REDIS_HOST"] == "redis"
        assert "STREAMOPS_REDIS_PASSWORD" in env
        assert env["STREAMOPS_METRICS_PORT"] == METRICS_PORTS[name]
        assert {"kafka", "redis"} <= set(entry["depends_on"])


def test_environment_keys_are_known_settings(compose: dict[str, Any]) -> None:
    """Every STREAMOPS_* key a service gets is one of its settings, so start-up accepts it."""
    common = {f"STREAMOPS_{f.name.upper()}" for f in dataclasses.fields(CommonSettings)}
    for name, entry in compose.items():
        fields = dataclasses.fields(SETTINGS.get(name, CommonSettings))
        known = common | {f"STREAMOPS_{name.upper()}_{f.name.upper()}" for f in fields}
        keys = {k for k in entry.get("environment", {}) if k.startswith("STREAMOPS_")}
        unknown = keys - known
        assert not unknown, f"{name}: {sorted(unknown)} are not settings"


def test_prometheus_scrapes_every_service() -> None:
    """Each service's metrics port is a Prometheus target, on /metrics."""
    jobs = _yaml("infra/prometheus/prometheus.yml")["scrape_configs"]
    targets = {
        target: job.get("metrics_path", "/metrics")
        for job in jobs
        for static in job.get("static_configs", [])
        for target in static["targets"]
    }
    for name, port in METRICS_PORTS.items():
        assert targets.get(f"{name}:{port}") == "/metrics", f"{name}:{port} is not scraped"


def test_prometheus_and_grafana_are_wired(compose: dict[str, Any]) -> None:
    """Prometheus mounts our scrape config; Grafana has it as its provisioned datasource."""
    assert compose["prometheus"]["image"].startswith("prom/prometheus:")
    mounts = compose["prometheus"]["volumes"]
    assert "./infra/prometheus/prometheus.yml:/etc/prometheus/prometheus.yml:ro" in mounts
    # prometheus.yml names its rules relative to itself: they must sit side by side.
    assert "./infra/prometheus/rules.yml:/etc/prometheus/rules.yml:ro" in mounts
    grafana_mounts = compose["grafana"]["volumes"]
    assert "./infra/grafana/provisioning:/etc/grafana/provisioning:ro" in grafana_mounts
    sources = _yaml("infra/grafana/provisioning/datasources/prometheus.yml")["datasources"]
    assert [(s["type"], s["url"]) for s in sources] == [("prometheus", "http://prometheus:9090")]
    providers = _yaml("infra/grafana/provisioning/dashboards/streamops.yml")["providers"]
    dashboards_path = providers[0]["options"]["path"]
    assert any(v.split(":")[1] == dashboards_path for v in grafana_mounts)


def _dashboards() -> list[tuple[str, dict[str, Any]]]:
    folder = REPO / "infra" / "grafana" / "dashboards"
    return [(p.name, json.loads(p.read_text())) for p in sorted(folder.glob("*.json"))]


def test_dashboard_panels_query_known_metrics_from_the_provisioned_datasource() -> None:
    """Every panel's query reads series our code exports (or rules.yml records, or ALERTS)."""
    known = known_series() | {"ALERTS"}
    sources = _yaml("infra/grafana/provisioning/datasources/prometheus.yml")["datasources"]
    uids = {source["uid"] for source in sources}
    assert _dashboards(), "no dashboards to provision"
    for name, board in _dashboards():
        ids = [panel["id"] for panel in board["panels"]]
        assert len(ids) == len(set(ids)), f"{name}: panel ids repeat"
        for panel in board["panels"]:
            where = f"{name} panel {panel['title']!r}"
            assert panel["targets"], f"{where}: no query"
            assert panel["datasource"]["uid"] in uids, where
            for target in panel["targets"]:
                assert target["datasource"]["uid"] in uids, where
                names = metric_names(target["expr"])
                assert names, f"{where}: {target['expr']!r} reads no metric"
                assert names <= known, f"{where}: unknown {sorted(names - known)}"


def test_dashboard_queries_parse(tmp_path: Path) -> None:
    """promtool parses every panel query (as recording rules in a scratch file)."""
    exprs = [t["expr"] for _n, b in _dashboards() for p in b["panels"] for t in p["targets"]]
    rules = [{"record": f"panel:query:{i}", "expr": e} for i, e in enumerate(exprs)]
    scratch = tmp_path / "panels.yml"
    scratch.write_text(yaml.safe_dump({"groups": [{"name": "panels", "rules": rules}]}))
    run_promtool("check", "rules", str(scratch))


def test_dashboard_covers_the_monitoring_issue() -> None:
    """Lag, errors, scorer latency, dead letters by reason, the alerting outbox and circuits."""
    queries = " ".join(
        t["expr"] for _name, board in _dashboards() for p in board["panels"] for t in p["targets"]
    )
    for series in (
        "streamops_consumer_lag",
        "streamops_errors_total",
        "streamops_scorer_latency_seconds_bucket",
        "streamops_deadletter_total",
        "streamops_alerting_outbox_depth",
        "streamops_alerting_notifications_total",
        "streamops_alerting_circuit_state",
        "streamops_drift_windows_closed_total",
    ):
        assert series in queries, f"no panel shows {series}"
    assert "reason" in queries


def test_dashboard_panels_do_not_overlap() -> None:
    """Panels tile the 24-column grid without covering each other."""
    for name, board in _dashboards():
        taken: set[tuple[int, int]] = set()
        for panel in board["panels"]:
            g = panel["gridPos"]
            assert 0 <= g["x"] and g["x"] + g["w"] <= 24, f"{name}: {panel['title']}"
            columns, rows = range(g["x"], g["x"] + g["w"]), range(g["y"], g["y"] + g["h"])
            cells = {(x, y) for x in columns for y in rows}
            assert not cells & taken, f"{name}: {panel['title']} overlaps another panel"
            taken |= cells


def test_kafka_and_redis_images_and_settings(compose: dict[str, Any]) -> None:
    """Official Kafka 4.1.2 in KRaft mode; Redis 7 with AOF and a password."""
    kafka = compose["kafka"]
    assert kafka["image"] == "apache/kafka:4.1.2"
    env = kafka["environment"]
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert env["KAFKA_TRANSACTION_STATE_LOG_MIN_ISR"] == 1
    assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    assert len(env["CLUSTER_ID"]) == 22  # 16 bytes, URL-safe base64 without padding
    redis = compose["redis"]
    assert redis["image"] == "redis:7"
    command = " ".join(_command(redis))
    for flag in ("--appendonly yes", "--appendfsync everysec", "requirepass"):
        assert flag in command
    # The password reaches redis-server through a 0600 file, not its command line (ps).
    assert "--requirepass" not in command and "umask 077" in command
    server_argv = command.split("exec redis-server", 1)[1]
    assert "STREAMOPS_REDIS_PASSWORD" not in server_argv


def test_published_ports_listen_on_loopback_only(compose: dict[str, Any]) -> None:
    """No container is reachable from outside the machine (R18)."""
    for name, entry in compose.items():
        for mapping in entry.get("ports", []):
            assert str(mapping).startswith("127.0.0.1:"), f"{name} publishes {mapping}"


def test_dockerfile_builds_the_project() -> None:
    """One slim Python 3.11 image with the project installed, run unprivileged."""
    text = (REPO / DOCKERFILE).read_text()
    assert "FROM python:3.11-slim" in text
    assert "pip install -e ." in text
    assert "\nUSER " in text
