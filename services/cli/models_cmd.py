"""`streamops models list|show|compare|lineage`: what the registry knows about models;
`streamops models import` publishes one trained elsewhere (`import_cmd`), `streamops models
describe` one that runs in the user's own service, from its training data (`describe_cmd`)."""

from __future__ import annotations

import argparse
import time
from typing import Any

from services.cli.api_client import ApiClient, add_client_arguments, print_json, url_part
from services.cli.describe_cmd import add_describe_parser
from services.cli.import_cmd import add_import_parser


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register `models` and its actions."""
    p = sub.add_parser("models", help="list, show, compare model versions; lineage graphs")
    actions = p.add_subparsers(dest="models_action", metavar="ACTION", required=True)
    add_client_arguments(actions.add_parser("list", help="every model and its versions"))
    show = actions.add_parser("show", help="one model's versions, or one version in full")
    show.add_argument("name")
    show.add_argument("version", nargs="?", type=int)
    add_client_arguments(show)
    cmp = actions.add_parser("compare", help="parameter diff and metric deltas of two versions")
    cmp.add_argument("name")
    cmp.add_argument("a", type=int)
    cmp.add_argument("b", type=int)
    add_client_arguments(cmp)
    lineage = actions.add_parser("lineage", help="a model's lineage graph")
    lineage.add_argument("model_id")
    add_client_arguments(lineage)
    add_import_parser(actions)
    add_describe_parser(actions)
    p.set_defaults(func=run)


def _when(ms: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ms / 1000))


def _metrics(metrics: dict[str, float]) -> str:
    return " ".join(f"{k}={v:.4g}" for k, v in sorted(metrics.items()))


def _print_compare(diff: dict[str, Any]) -> None:
    print(
        f"v{diff['a']} -> v{diff['b']}  estimator {diff['estimator']['a']} -> "
        f"{diff['estimator']['b']}  same data: {diff['same_data']}"
    )
    params = diff["params"]
    for key, change in params["changed"].items():
        print(f"  param {key}: {change['a']!r} -> {change['b']!r}")
    for key, value in params["added"].items():
        print(f"  param {key}: (none) -> {value!r}")
    for key, value in params["removed"].items():
        print(f"  param {key}: {value!r} -> (none)")
    for name, m in diff["metrics"].items():
        mark = "better" if m["b_better"] else ("same" if m["delta"] == 0 else "worse")
        print(f"  metric {name}: {m['a']:.4g} -> {m['b']:.4g} ({m['delta']:+.4g}, {mark})")


def run(args: argparse.Namespace, environ: dict[str, str]) -> int:
    """Run one `models` action against the registry API."""
    client = ApiClient.registry(args, environ)
    action = args.models_action
    if action == "list":
        answer: Any = client.get("/models")
    elif action == "show" and args.version is None:
        answer = client.get(f"/models/{url_part(args.name)}")
    elif action == "show":
        answer = client.get(f"/models/{url_part(args.name)}/versions/{args.version}")
    elif action == "compare":
        answer = client.get(f"/compare/{url_part(args.name)}", a=args.a, b=args.b)
    else:
        answer = client.get(f"/lineage/{url_part(args.model_id)}")
    if args.json or (action == "show" and args.version is not None):
        print_json(answer)
    elif action == "list":
        for m in answer:
            latest = m["latest"] or {}
            print(
                f"{m['name']:24} versions {m['versions']}  latest v{latest.get('version')} "
                f"{latest.get('estimator', '')} {latest.get('model_id', '')[:12]}"
            )
    elif action == "show":
        for v in answer["versions"]:
            print(
                f"v{v['version']:<4} {v['model_id'][:12]} {v['estimator']:8} "
                f"{_when(v['created_at'])}  {_metrics(v['metrics'])}  {v.get('origin', '')}"
            )
    elif action == "compare":
        _print_compare(answer)
    else:
        for node in answer["nodes"]:
            print(f"{node['kind']:6} {node['label']}")
        for edge in answer["edges"]:
            print(f"  {edge['source']} -{edge['kind']}-> {edge['target']}")
    return 0
