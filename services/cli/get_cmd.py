"""`streamops get deployment NAME -o yaml|json` and `streamops get deployments`.

`-o yaml` prints the deployment file `streamops apply -f` reads, so the two round-trip.
"""

from __future__ import annotations

import argparse

from services.cli.api_client import ApiClient, add_client_arguments, print_json, url_part
from services.cli.deployment_file import CONFIG, to_yaml


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register `get`."""
    p = sub.add_parser("get", help="show deployments (as the file `apply` reads)")
    kinds = p.add_subparsers(dest="kind", metavar="KIND", required=True)
    one = kinds.add_parser("deployment", help="one deployment")
    one.add_argument("name")
    one.add_argument("-o", "--output", choices=("yaml", "json"), default="yaml")
    add_client_arguments(one)
    many = kinds.add_parser("deployments", help="every deployment, one line each")
    add_client_arguments(many)
    p.set_defaults(func=run)


def run(args: argparse.Namespace, environ: dict[str, str]) -> int:
    """Print what the registry holds."""
    client = ApiClient.registry(args, environ)
    if args.kind == "deployments":
        rows = client.get("/deployments")
        if args.json:
            print_json(rows)
        for d in rows if not args.json else []:
            champion = d["champion"]
            kind = "external" if d.get("external") else d["mode"]
            print(
                f"{d['name']:24} r{d['revision']:<4} champion {champion['model_name']}:"
                f"{champion['version']:<4} challengers {len(d['challengers'])}  {kind}"
            )
        return 0
    record = client.get(f"/deployments/{url_part(args.name)}")
    if args.output == "json" or args.json:
        keep = ("name", "revision", "champion", "challengers", *CONFIG)
        print_json({k: record[k] for k in keep if k in record})
    else:
        print(to_yaml(record), end="")
    return 0
