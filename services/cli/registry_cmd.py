"""`streamops registry rebuild`: replay the topics and prove (or restore) the registry's view."""

from __future__ import annotations

import argparse

from services.common.settings import load_settings
from services.registry.config import RegistrySettings


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register `registry`."""
    p = sub.add_parser("registry", help="registry maintenance (rebuild the view from topics)")
    actions = p.add_subparsers(dest="registry_action", metavar="ACTION", required=True)
    rebuild = actions.add_parser(
        "rebuild",
        help="replay models/deployments/governance/drift into an empty namespace and compare "
        "with the live view (exit 1 on a difference); --replace rebuilds the live view",
    )
    rebuild.add_argument(
        "--replace",
        action="store_true",
        help="clear the live view and replay into it (stop the registry first)",
    )
    rebuild.add_argument("--prefix", help="topic and key prefix (default STREAMOPS_TOPIC_PREFIX)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace, environ: dict[str, str]) -> int:
    """Verify or replace the view; the registry's own settings (STREAMOPS_REGISTRY_*) apply."""
    from services.registry.rebuild import replace, verify  # Kafka and Redis clients: load late

    settings = load_settings(RegistrySettings, "registry", environ, {"topic_prefix": args.prefix})
    if args.replace:
        sizes = replace(settings)
        print("rebuilt: " + ", ".join(f"{k} {v}" for k, v in sizes.items()))
        return 0
    differences = verify(settings)
    if not differences:
        print("rebuild from the topics is identical to the live view")
        return 0
    print("rebuild from the topics differs from the live view:")
    print("\n".join(differences))
    return 1
