"""`streamops`: one command line for the infrastructure, the topics and every service.

Each sub-command lives in its own module and registers itself with `add_parser(subparsers)`;
this module only dispatches, so `main` stays a table of contents.
"""

from __future__ import annotations

import argparse
import os
import sys

from services.cli import (
    alerting_cmd,
    apply_cmd,
    consume_cmd,
    deadletters_cmd,
    demo_cmd,
    deploy_cmd,
    get_cmd,
    infra_cmd,
    keys_cmd,
    models_cmd,
    produce_cmd,
    registry_cmd,
    topics_cmd,
    train_cmd,
    version_cmd,
    webhook_cmd,
)
from services.common.errors import ConfigError, StreamopsError

COMMANDS = (
    infra_cmd,
    topics_cmd,
    produce_cmd,
    consume_cmd,
    deadletters_cmd,
    demo_cmd,
    version_cmd,
    keys_cmd,
    train_cmd,
    models_cmd,
    deploy_cmd,
    apply_cmd,
    get_cmd,
    registry_cmd,
    alerting_cmd,
    webhook_cmd,
)


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser with every sub-command."""
    parser = argparse.ArgumentParser(
        prog="streamops",
        description="Open-source MLOps on Kafka. Start with `streamops infra up`.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in COMMANDS:
        command.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parse flags and run one sub-command; returns the exit code."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args, dict(os.environ)) or 0)
    except ConfigError as exc:
        print(f"streamops: configuration error: {exc}", file=sys.stderr)
        return 2
    except StreamopsError as exc:
        print(f"streamops: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("streamops: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
