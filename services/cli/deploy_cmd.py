"""`streamops deploy request|approve|reject|history`: change deployments through the registry."""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from services.cli.api_client import ApiClient, add_client_arguments, print_json, url_part
from services.common.errors import ConfigError

ACTIONS = (
    "set_champion",
    "add_challenger",
    "remove_challenger",
    "rollback",
    "set_mode",
    "configure",
)


def _model(spec: str) -> dict[str, Any]:
    name, sep, version = spec.rpartition(":")
    if sep and name and version.isdigit():
        return {"name": name, "version": int(version)}
    if len(spec) == 64 and all(c in "0123456789abcdef" for c in spec):
        return {"model_id": spec}
    raise argparse.ArgumentTypeError(f"{spec!r}: give NAME:VERSION or a 64-hex model id")


def _setup(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"--setup is not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(
            "--setup is a JSON object, e.g. '{\"window_seconds\": 30}'"
        )
    return value


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register `deploy` and its actions."""
    p = sub.add_parser("deploy", help="request, approve, reject deployment changes; history")
    actions = p.add_subparsers(dest="deploy_action", metavar="ACTION", required=True)
    req = actions.add_parser("request", help="ask for a change (editor)")
    req.add_argument("deployment")
    req.add_argument("--action", choices=ACTIONS, default="set_champion")
    req.add_argument("--model", type=_model, help="NAME:VERSION or model id")
    req.add_argument("--weight", type=float, default=0.0, help="challenger share in ab mode")
    req.add_argument("--mode", choices=("shadow", "ab"))
    req.add_argument("--to-revision", type=int, help="rollback target (default: previous)")
    req.add_argument(
        "--setup",
        type=_setup,
        help="configuration to set with the change, a JSON object (thresholds, humility, policy, "
        "window_seconds, label_delay_seconds, mode, external); alone with --action configure",
    )
    req.add_argument("--reason", required=True, help="why (recorded in the audit trail)")
    req.add_argument(
        "--auto-approve",
        action="store_true",
        help="set the policy that approves later requests at once (needs an owner)",
    )
    add_client_arguments(req)
    for verb in ("approve", "reject"):
        d = actions.add_parser(verb, help=f"{verb} a pending request (owner, not the requester)")
        d.add_argument("request_id")
        d.add_argument("--reason", required=verb == "reject", default="")
        add_client_arguments(d)
    hist = actions.add_parser("history", help="revisions and requests of a deployment")
    hist.add_argument("deployment")
    add_client_arguments(hist)
    p.set_defaults(func=run)


def _when(ms: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ms / 1000))


def _request_body(args: argparse.Namespace) -> dict[str, Any]:
    if args.action in ("set_champion", "add_challenger", "remove_challenger") and not args.model:
        raise ConfigError(f"--action {args.action} needs --model NAME:VERSION")
    body: dict[str, Any] = {
        "action": args.action,
        "reason": args.reason,
        "model": args.model,
        "weight": args.weight,
        "mode": args.mode,
        "to_revision": args.to_revision,
    }
    setup = dict(args.setup or {})
    if args.auto_approve:
        setup["policy"] = {**setup.get("policy", {}), "auto_approve": True}
    if setup:
        body["setup"] = setup
    return body


def _print_history(revisions: list[dict[str, Any]], requests: list[dict[str, Any]]) -> None:
    for r in revisions:
        challengers = (
            ", ".join(f"v{c['model']['version']}@{c['weight']:g}" for c in r["challengers"]) or "-"
        )
        print(
            f"r{r['revision']:<3} {_when(r['updated_at'])} champion "
            f"{r['champion']['model_name']} v{r['champion']['version']}  challengers "
            f"{challengers}  mode {r['mode']}  by {r['updated_by']}: {r['reason']}"
        )
    for q in requests:
        decision = (q["change"].get("evidence") or {}).get("decision")
        print(
            f"request {q['request_id']} {q['status']:8} {q['change']['action']} by "
            f"{q['requested_by']}{f' ({decision})' if decision else ''}: {q['reason']}"
        )


def run(args: argparse.Namespace, environ: dict[str, str]) -> int:
    """Run one `deploy` action against the registry API."""
    client = ApiClient.registry(args, environ)
    action = args.deploy_action
    if action == "history":
        revisions = client.get(f"/deployments/{url_part(args.deployment)}/history")
        current = client.get(f"/deployments/{url_part(args.deployment)}")
        if args.json:
            print_json({"revisions": revisions, "requests": current["requests"]})
        else:
            _print_history(revisions, current["requests"])
        return 0
    if action == "request":
        path = f"/deployments/{url_part(args.deployment)}/requests"
        answer = client.post(path, _request_body(args))
    else:
        path = f"/requests/{url_part(args.request_id)}/{action}"
        answer = client.post(path, {"reason": args.reason})
    if args.json:
        print_json(answer)
    else:
        print(f"request {answer['request_id']} on {answer['deployment']}: {answer['status']}")
    return 0
