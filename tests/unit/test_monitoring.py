"""infra/prometheus: rules name only metrics the services define; promtool agrees when present."""

from __future__ import annotations

import re
import shutil
import subprocess
import warnings
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry

from services.alerting.alerting_metrics import AlertingMetrics
from services.common.metrics import StandardMetrics
from services.drift.drift_metrics import DriftMetrics
from services.registry.api import ApiMetrics
from services.scorer.app import ScorerMetrics
from services.trainer.metrics import TrainerMetrics

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
PROM = REPO / "infra" / "prometheus"
# Series Prometheus itself adds to every scrape.
SCRAPE_SERIES = {"up", "scrape_duration_seconds", "scrape_samples_scraped"}
SUFFIXES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "summary": ("", "_count", "_sum", "_created"),
}
PROMQL_WORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless",
    "bool", "offset", "inf", "nan",
}  # fmt: skip
# Clauses whose parentheses hold label names, not expressions.
LABEL_LISTS = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
IDENTIFIER = re.compile(r"(?<![\w.:])([A-Za-z_:][A-Za-z0-9_:]*)(?!\w)(\s*\()?")


@cache
def exported_series() -> frozenset[str]:
    """Every series name the services' metric classes expose (built on one fresh registry)."""
    registry = CollectorRegistry()
    StandardMetrics(registry, "any")
    for metrics in (ScorerMetrics, TrainerMetrics, DriftMetrics, AlertingMetrics, ApiMetrics):
        metrics(registry)
    return frozenset(
        family.name + suffix
        for family in registry.collect()
        for suffix in SUFFIXES.get(family.type, ("",))
    )


def metric_names(expr: str) -> set[str]:
    """The metric (or recorded series) names a PromQL expression reads."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # label values
    text = re.sub(r"\{[^}]*\}", "", text)  # matchers
    text = re.sub(r"\[[^\]]*\]", "", text)  # ranges and subqueries
    text = LABEL_LISTS.sub("", text)
    return {
        m.group(1)
        for m in IDENTIFIER.finditer(text)
        if not m.group(2) and m.group(1).lower() not in PROMQL_WORDS
    }


def rules() -> list[dict[str, Any]]:
    """Every rule of rules.yml, in file order."""
    groups = yaml.safe_load((PROM / "rules.yml").read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def recorded_series() -> set[str]:
    """Names that rules.yml records."""
    return {r["record"] for r in rules() if "record" in r}


def known_series() -> set[str]:
    """What a query may name: exported metrics, scrape series and our recording rules."""
    return set(exported_series()) | SCRAPE_SERIES | recorded_series()


def test_the_name_parser_sees_metrics_not_functions_labels_or_durations() -> None:
    """The checks below are only as good as this parser."""
    expr = (
        'histogram_quantile(0.99, sum by (le, service) (rate(a_bucket{job="x", le!~"1e-3"}[5m])))'
        " > on (service) group_left(topic) b:c:d * 1e-3 and up offset 5m"
    )
    assert metric_names(expr) == {"a_bucket", "b:c:d", "up"}


def test_the_registry_scan_finds_each_kind_of_metric() -> None:
    """Counters, gauges and histograms all come out under their exposed names."""
    names = exported_series()
    for name in (
        "streamops_errors_total",
        "streamops_consumer_lag",
        "streamops_scorer_latency_seconds_bucket",
        "streamops_alerting_outbox_depth",
    ):
        assert name in names


def test_rules_file_structure() -> None:
    """Groups are named once; each rule records or alerts, with severity and text when alerting."""
    groups = yaml.safe_load((PROM / "rules.yml").read_text())["groups"]
    assert len({g["name"] for g in groups}) == len(groups)
    alerts = [r for r in rules() if "alert" in r]
    records = [r for r in rules() if "record" in r]
    assert len(alerts) + len(records) == len(rules())
    for rule in records:
        assert set(rule) == {"record", "expr"}, rule
        assert re.fullmatch(r"[a-z_]+:[a-z0-9_]+:[a-z0-9_]+", rule["record"]), rule["record"]
    for rule in alerts:
        assert re.fullmatch(r"Streamops[A-Z][A-Za-z0-9]+", rule["alert"]), rule["alert"]
        assert re.fullmatch(r"\d+[smh]", rule["for"]), rule
        assert rule["labels"]["severity"] in {"info", "warning", "critical"}
        assert rule["annotations"]["summary"] and rule["annotations"]["description"]
    assert len({r["alert"] for r in alerts}) == len(alerts)
    for group in groups:  # a record read by a later group is one evaluation stale
        recorded: set[str] = set()
        for rule in group["rules"]:
            stale = (metric_names(rule["expr"]) & recorded_series()) - recorded
            assert not stale, f"{rule.get('alert') or rule['record']} reads {stale} too early"
            recorded.add(rule.get("record", ""))


def test_every_rule_reads_only_metrics_our_code_defines() -> None:
    """A renamed metric breaks this test rather than silently emptying an alert."""
    known = known_series()
    for rule in rules():
        unknown = metric_names(rule["expr"]) - known
        assert not unknown, f"{rule.get('alert') or rule['record']}: unknown {sorted(unknown)}"


def test_alerts_cover_lag_errors_latency_dead_letters_targets_and_alerting() -> None:
    """The issue's list, each by the series it must watch (through recording rules or not)."""
    records = {r["record"]: r["expr"] for r in rules() if "record" in r}

    def reads(expr: str) -> set[str]:
        names = metric_names(expr)
        return names | {n for r in names & records.keys() for n in reads(records[r])}

    watched = set().union(*(reads(r["expr"]) for r in rules() if "alert" in r))
    for series in (
        "streamops_consumer_lag",
        "streamops_errors_total",
        "streamops_scorer_latency_seconds_bucket",
        "streamops_deadletter_total",
        "up",
        "streamops_alerting_outbox_depth",
        "streamops_alerting_circuit_state",
    ):
        assert series in watched, f"no alert watches {series}"


def test_rules_test_file_names_real_alerts() -> None:
    """rules_test.yml loads rules.yml and asserts on alerts that exist."""
    spec = yaml.safe_load((PROM / "rules_test.yml").read_text())
    assert spec["rule_files"] == ["rules.yml"]
    alerts = {r["alert"] for r in rules() if "alert" in r}
    tested = {t["alertname"] for case in spec["tests"] for t in case.get("alert_rule_test", [])}
    assert tested <= alerts
    for case in spec["tests"]:
        for series in case["input_series"]:
            assert metric_names(series["series"]) <= known_series(), series["series"]


def test_local_config_scrapes_the_compose_jobs_on_loopback(tmp_path: Path) -> None:
    """`prometheus.sh config` (for `make up`): compose's jobs, on 127.0.0.1, with our rules."""
    out = subprocess.run(
        ["bash", str(PROM / "prometheus.sh"), "config"],
        env={"PATH": "/usr/bin:/bin", "STREAMOPS_VAR_DIR": str(tmp_path)},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    local = yaml.safe_load(out)
    compose = yaml.safe_load((PROM / "prometheus.yml").read_text())
    assert local["rule_files"] == [str(PROM / "rules.yml")]
    assert compose["rule_files"] == ["rules.yml"]

    def targets(config: dict[str, Any]) -> dict[str, list[tuple[str, str]]]:
        return {
            job["job_name"]: [
                tuple(t.split(":")) for s in job["static_configs"] for t in s["targets"]
            ]
            for job in config["scrape_configs"]
        }

    ports = {job: [port for _host, port in ts] for job, ts in targets(compose).items()}
    assert {job: [port for _host, port in ts] for job, ts in targets(local).items()} == ports
    assert {host for ts in targets(local).values() for host, _port in ts} == {"127.0.0.1"}
    (tmp_path / "prometheus.yml").write_text(out)
    run_promtool("check", "config", str(tmp_path / "prometheus.yml"))


def test_promtool_accepts_the_rules_and_their_tests() -> None:
    """`promtool check rules` and `promtool test rules` pass (structure only without promtool)."""
    run_promtool("check", "rules", str(PROM / "rules.yml"))
    run_promtool("check", "config", str(PROM / "prometheus.yml"))
    run_promtool("test", "rules", str(PROM / "rules_test.yml"))


def run_promtool(*args: str) -> None:
    """Run promtool and assert success; without it, warn (visibly) that only structure ran."""
    promtool = shutil.which("promtool")
    if promtool is None:
        warnings.warn(
            f"promtool not installed: `promtool {args[0]} {args[1]}` not run, the YAML structure "
            "tests above still ran (apt-get install prometheus to run it)",
            stacklevel=2,
        )
        return
    done = subprocess.run([promtool, *args], capture_output=True, text=True, cwd=PROM, check=False)
    assert done.returncode == 0, f"promtool {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
