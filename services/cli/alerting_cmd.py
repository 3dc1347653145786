"""`streamops alerts|silences`: look at open alert groups, acknowledge, silence, expire.

Talks to the alerting service's API (`--alerting-url`, default STREAMOPS_CLI_ALERTING_URL).
Durations are like `30m`, `2h`, `1d` or plain seconds.
"""

from __future__ import annotations

import argparse
import datetime
import getpass
import re

from services.cli.api_client import ApiClient, print_json, url_part
from services.common.errors import ConfigError

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> float:
    """Seconds in `30m`, `2h`, `1d`, `90s` or `90`; ConfigError otherwise."""
    match = _DURATION.match(text)
    if not match or float(match.group(1)) <= 0:
        raise ConfigError(f"duration {text!r}: use a positive number with s, m, h or d (e.g. 2h)")
    return float(match.group(1)) * _UNITS[match.group(2)]


def _client_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--alerting-url", help="alerting API (default STREAMOPS_CLI_ALERTING_URL)")
    p.add_argument(
        "--token",
        help="API token for changes (default STREAMOPS_CLI_ALERTING_TOKEN, else "
        "var/alerting/token, else STREAMOPS_CLI_TOKEN; argv is visible to local users)",
    )
    p.add_argument("--json", action="store_true", help="print the raw JSON answer")


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register `alerts list|ack` and `silences add|list|expire`."""
    alerts = sub.add_parser("alerts", help="open alert groups; acknowledge an alert")
    a_actions = alerts.add_subparsers(dest="alerts_action", metavar="ACTION", required=True)
    a_list = a_actions.add_parser("list", help="open groups and their alerts")
    _client_args(a_list)
    a_list.set_defaults(func=run_alerts_list)
    a_ack = a_actions.add_parser(
        "ack", help="acknowledge a firing alert (no repeats until it resolves)"
    )
    a_ack.add_argument("fingerprint", help="the alert's fingerprint (16 hex digits)")
    a_ack.add_argument("--comment", default="", help="why")
    a_ack.add_argument("--by", default=getpass.getuser(), help="who (default: you)")
    _client_args(a_ack)
    a_ack.set_defaults(func=run_alerts_ack)

    sil = sub.add_parser("silences", help="mute alerts matching labels for a while")
    s_actions = sil.add_subparsers(dest="silences_action", metavar="ACTION", required=True)
    s_add = s_actions.add_parser("add", help="create a silence")
    s_add.add_argument(
        "matchers", nargs="+", help="label matchers, e.g. deployment=credit 'severity=~warn.*'"
    )
    s_add.add_argument("--duration", default="2h", help="how long (default 2h)")
    s_add.add_argument("--comment", default="", help="why")
    s_add.add_argument("--by", default=getpass.getuser(), help="who (default: you)")
    _client_args(s_add)
    s_add.set_defaults(func=run_silences_add)
    s_list = s_actions.add_parser("list", help="pending and active silences")
    s_list.add_argument("--all", action="store_true", help="include expired ones")
    _client_args(s_list)
    s_list.set_defaults(func=run_silences_list)
    s_expire = s_actions.add_parser("expire", help="end a silence now")
    s_expire.add_argument("silence_id")
    _client_args(s_expire)
    s_expire.set_defaults(func=run_silences_expire)


def _show(args: argparse.Namespace, answer: object, text: str) -> int:
    """Print the raw JSON answer with --json, else the one-line summary; exit code 0."""
    if args.json:
        print_json(answer)
    else:
        print(text)
    return 0


def _when(epoch: float) -> str:
    return datetime.datetime.fromtimestamp(epoch, datetime.UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def run_alerts_list(args: argparse.Namespace, environ: dict[str, str]) -> int:
    """Print open groups."""
    answer = ApiClient.alerting(args, environ).get("/api/v1/alerts")
    if args.json:
        print_json(answer)
        return 0
    groups = answer["groups"]
    if not groups:
        print("no open alert groups")
    for group in groups:
        print(f"{group['group_key']}  ({group['firing']} firing)")
        for alert in group["alerts"]:
            labels = alert["labels"]
            print(
                f"  {alert['status']:8} {alert['fingerprint']} {labels.get('alertname', '?')} "
                f"deployment={labels.get('deployment', '?')} severity={labels.get('severity', '?')}"
            )
    return 0


def run_alerts_ack(args: argparse.Namespace, environ: dict[str, str]) -> int:
    """Acknowledge one alert."""
    body = {"created_by": args.by, "comment": args.comment}
    path = f"/api/v1/alerts/{url_part(args.fingerprint)}/ack"
    answer = ApiClient.alerting(args, environ).post(path, body)
    return _show(args, answer, f"acknowledged {answer['fingerprint']} by {answer['created_by']}")


def run_silences_add(args: argparse.Namespace, environ: dict[str, str]) -> int:
    """Create a silence."""
    body = {
        "matchers": list(args.matchers),
        "duration_s": parse_duration(args.duration),
        "created_by": args.by,
        "comment": args.comment,
    }
    answer = ApiClient.alerting(args, environ).post("/api/v1/silences", body)
    return _show(
        args, answer, f"silence {answer['id']} {answer['status']} until {_when(answer['ends_at'])}"
    )


def run_silences_list(args: argparse.Namespace, environ: dict[str, str]) -> int:
    """Print silences."""
    answer = ApiClient.alerting(args, environ).get(
        "/api/v1/silences", include_expired=str(args.all).lower()
    )
    if args.json:
        print_json(answer)
        return 0
    if not answer["silences"]:
        print("no silences")
    for s in answer["silences"]:
        matchers = " ".join(f"{m['name']}{m['op']}{m['value']!r}" for m in s["matchers"])
        print(f"{s['id']} {s['status']:8} until {_when(s['ends_at'])} {matchers} "
              f"by {s['created_by']}: {s['comment']}")  # fmt: skip
    return 0


def run_silences_expire(args: argparse.Namespace, environ: dict[str, str]) -> int:
    """Expire a silence."""
    path = f"/api/v1/silences/{url_part(args.silence_id)}"
    answer = ApiClient.alerting(args, environ).delete(path)
    return _show(args, answer, f"silence {answer['id']} expired")
