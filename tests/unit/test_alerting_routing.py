"""The alerting config file: validation with file:line errors, the routing tree, secrets hidden."""

import base64
import textwrap
from pathlib import Path

import pytest

from services.alerting.marked_yaml import parse_duration
from services.alerting.routing import load_config, parse_config
from services.alerting.ssrf import Policy
from services.common.errors import ConfigError

pytestmark = pytest.mark.unit

SECRET = "whsec_" + base64.b64encode(b"s" * 32).decode()
OLD = "whsec_" + base64.b64encode(b"o" * 32).decode()

GOOD = f"""\
receivers:
  - name: ops
    url: https://hooks.example.com/services/T0KEN/abc
    secret: {SECRET}
  - name: pager
    url: https://pager.example.com/hook
    secret: [{SECRET}, {OLD}]
    timeout: 5s
  - name: ml
    url: https://ml.example.com/hook
    secret: {SECRET}
route:
  receiver: ops
  group_by: [deployment, kind]
  group_wait: 10s
  group_interval: 2m
  repeat_interval: 1h30m
  routes:
    - matchers: ['severity="critical"']
      receiver: pager
      group_wait: 0s
      continue: true
    - matchers: ['kind=~"accuracy|data_drift"']
      receiver: ml
      routes:
        - matchers: ['deployment="fraud"']
          repeat_interval: 10m
retrain:
  after_windows: 4
  kinds: [accuracy]
"""


def config_at(text: str) -> str:
    return textwrap.dedent(text)


def test_good_config_loads_with_inheritance(tmp_path: Path) -> None:
    path = tmp_path / "alerting.yaml"
    path.write_text(GOOD)
    cfg = load_config(path)
    root = cfg.route
    assert (root.receiver, root.group_by, root.group_wait, root.group_interval) == (
        "ops",
        ("deployment", "kind"),
        10,
        120,
    )
    assert root.repeat_interval == 5400
    pager, ml = root.routes
    assert pager.group_wait == 0 and pager.group_interval == 120 and pager.continue_matching
    (fraud,) = ml.routes
    assert fraud.receiver == "ml" and fraud.repeat_interval == 600 and fraud.group_wait == 10
    assert [r.key for r in cfg.routes()] == [
        "{}",
        '{}/{severity="critical"}',
        '{}/{kind=~"accuracy|data_drift"}',
        '{}/{kind=~"accuracy|data_drift"}/{deployment="fraud"}',
    ]
    assert cfg.receivers["pager"].timeout_s == 5 and len(cfg.receivers["pager"].secrets) == 2
    assert cfg.retrain.after_windows == 4 and cfg.retrain.kinds == {"accuracy"}


@pytest.mark.parametrize(
    ("labels", "receivers"),
    [
        ({"severity": "critical", "kind": "accuracy", "deployment": "fraud"}, ["pager", "ml"]),
        ({"severity": "critical", "kind": "health", "deployment": "fraud"}, ["pager"]),
        ({"severity": "warning", "kind": "data_drift", "deployment": "churn"}, ["ml"]),
        ({"severity": "warning", "kind": "health", "deployment": "fraud"}, ["ops"]),
    ],
)
def test_match_follows_alertmanager_tree_walk(labels: dict, receivers: list) -> None:
    cfg = parse_config(GOOD)
    assert [r.receiver for r in cfg.match(labels)] == receivers


def test_deepest_match_and_stop_without_continue() -> None:
    cfg = parse_config(GOOD)
    got = cfg.match({"severity": "warning", "kind": "accuracy", "deployment": "fraud"})
    assert [r.key for r in got] == ['{}/{kind=~"accuracy|data_drift"}/{deployment="fraud"}']


def test_secrets_and_url_tokens_never_in_repr() -> None:
    cfg = parse_config(GOOD)
    text = repr(cfg)
    assert SECRET not in text and SECRET[6:] not in text and OLD[6:] not in text
    assert "T0KEN" not in text and "hooks.example.com" in text
    assert cfg.receivers["ops"].secrets[0].reveal() == SECRET


def bad(replace: str, with_: str) -> str:
    assert replace in GOOD
    return GOOD.replace(replace, with_, 1)


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        (bad("  group_wait: 10s", "  group_wiat: 10s"), 15, "unknown key 'group_wiat'"),
        (bad("retrain:", "retrian:"), 28, "unknown key 'retrian'"),
        (bad("      receiver: ml\n", "      receiver: nobody\n"), 24, "unknown receiver"),
        (bad("  group_interval: 2m", "  group_interval: soon"), 16, "bad duration"),
        (bad("  group_interval: 2m", "  group_interval: 0s"), 16, "above 0"),
        (bad("  repeat_interval: 1h30m", "  repeat_interval: -5"), 17, "negative"),
        (bad("  group_by: [deployment, kind]", "  group_by: [deploy-ment]"), 14, "label name"),
        (bad("['severity=\"critical\"']", "['severity==critical']"), 19, "cannot parse"),
        (bad("      continue: true", "      continue: yes please"), 22, "wrong type"),
        (bad("  after_windows: 4", "  after_windows: 0"), 29, "between 1 and 1000"),
        (bad("  kinds: [accuracy]", "  kinds: [accuracy, vibes]"), 30, "unknown kind"),
        (
            bad(f"    secret: {SECRET}\n  - name: pager", "    secret: hunter2\n  - name: pager"),
            4,
            "whsec_",
        ),
        (
            bad("https://hooks.example.com/services", "ftp://hooks.example.com/services"),
            3,
            "bad_scheme",
        ),
        (bad("https://hooks.example.com/services", "http://0x7f000001/services"), 3, "loopback"),
        (bad("https://hooks.example.com/services", "http://10.1.2.3/services"), 3, "private"),
        (bad("  - name: ml\n", "  - name: ops\n"), 9, "duplicate receiver"),
        (bad("  receiver: ops\n", "  receiver: ops\n  receiver: ml\n"), 14, "duplicate key"),
        (bad("    timeout: 5s", "    timeout: 1h"), 8, "at most 5m"),
        (
            bad("route:\n  receiver: ops\n", "route:\n  matchers: ['a=\"b\"']\n  receiver: ops\n"),
            13,
            "unknown key 'matchers'",
        ),
        (
            bad("  group_by: [deployment, kind]", "  group_by: [deployment, kind"),
            15,
            "invalid YAML",
        ),
        ("receivers: []\n", 1, "needs 'route'"),
        ("", 1, "empty"),
        ("- just\n- a list\n", 1, "must be a mapping"),
    ],
)
def test_errors_name_file_and_line(text: str, line: int, words: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(text, source="alerting.yaml")
    message = str(info.value)
    assert message.startswith(f"alerting.yaml:{line}: "), message
    assert words in message, message


def test_loopback_receivers_only_with_the_test_policy() -> None:
    text = bad("https://hooks.example.com/services", "http://127.0.0.1:18080/services")
    with pytest.raises(ConfigError):
        parse_config(text)
    assert parse_config(text, policy=Policy(allow_loopback_for_tests=True)).receivers["ops"]


def test_the_file_cannot_switch_on_the_loopback_allowance() -> None:
    for where in ("route:\n", "retrain:\n"):
        text = bad(where, f"allow_loopback_for_tests: true\n{where}")
        with pytest.raises(ConfigError, match="unknown key 'allow_loopback_for_tests'"):
            parse_config(text)
    text = bad("    timeout: 5s", "    timeout: 5s\n    allow_loopback_for_tests: true")
    with pytest.raises(ConfigError, match="unknown key"):
        parse_config(text)


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "nope.yaml")


@pytest.mark.parametrize(
    ("value", "seconds"),
    [("30s", 30), ("5m", 300), ("4h", 14_400), ("1d", 86_400), ("1h30m", 5400), ("250ms", 0.25),
     (45, 45), (1.5, 1.5), ("0s", 0)],
)  # fmt: skip
def test_durations(value: object, seconds: float) -> None:
    assert parse_duration(value) == seconds


@pytest.mark.parametrize("value", ["", "5", "5 m", "m5", "5x", True, None, "-5s", -1])
def test_bad_durations(value: object) -> None:
    with pytest.raises(ValueError):
        parse_duration(value)


def test_defaults_apply_when_timers_are_left_out() -> None:
    text = f"receivers:\n  - {{name: a, url: 'https://a.example.com/', secret: {SECRET}}}\n"
    cfg = parse_config(text + "route:\n  receiver: a\n")
    assert (cfg.route.group_wait, cfg.route.group_interval, cfg.route.repeat_interval) == (
        30,
        300,
        14_400,
    )
    assert cfg.route.group_by == ("deployment",)
    assert cfg.retrain.after_windows == 3 and cfg.retrain.kinds == {"accuracy", "data_drift"}
