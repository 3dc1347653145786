"""`streamops topics`: create every streamops topic (idempotent) and list them."""

from __future__ import annotations

import argparse

from services.cli.cli_settings import cli_settings
from services.common.admin import ensure_topics
from services.common.kafka_config import KafkaConfig
from services.common.topics import TopicNamer


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register `topics`."""
    p = sub.add_parser("topics", help="create the streamops topics if missing, and list them")
    p.add_argument("--prefix", help="topic prefix (default: STREAMOPS_TOPIC_PREFIX or streamops.)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace, environ: dict[str, str]) -> int:
    """Ensure and print the topic table."""
    settings = cli_settings(environ, {"topic_prefix": args.prefix})
    namer = TopicNamer(settings.topic_prefix)
    status = ensure_topics(KafkaConfig.from_settings(settings, "streamops-cli").admin(), namer)
    print(f"{'topic':32} {'record':16} {'partitions':>10}  {'policy':8} status")
    for name, spec in namer.all():
        policy = spec.config.get("cleanup.policy", "delete")
        print(f"{name:32} {spec.record:16} {spec.partitions:>10}  {policy:8} {status[name]}")
    return 0
