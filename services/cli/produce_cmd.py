"""`streamops produce`: JSON lines, CSV or a built-in generator onto a topic, delivery checked.

Every record is validated and encoded exactly as the services will decode it; `--raw` sends the
lines verbatim instead (to try out the dead-letter path). The count printed at the end is of
*acknowledged* messages: a message whose delivery timed out is reported as unknown, never
blindly resent (it may have been written).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from collections.abc import Iterator
from typing import Any, TextIO

from confluent_kafka import Producer

from services.cli.cli_settings import cli_settings
from services.common import serde
from services.common.errors import ConfigError, PoisonMessage
from services.common.kafka_config import KafkaConfig
from services.common.producing import delivery_outcome, produce_waiting
from services.common.progress import Progress
from services.common.topics import TopicNamer


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register `produce`."""
    p = sub.add_parser("produce", help="produce JSON lines, CSV rows or generated events")
    p.add_argument("--topic", required=True, help="logical (events) or physical topic name")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--file", default="-", help="input file, - for stdin (default)")
    src.add_argument("--generator", choices=("credit",), help="built-in event generator")
    p.add_argument("--format", choices=("jsonl", "csv"), default="jsonl")
    p.add_argument("--raw", action="store_true", help="send each line verbatim, unvalidated")
    p.add_argument("--count", type=int, default=1000, help="events to generate (generator)")
    p.add_argument("--rate", type=float, default=0.0, help="events per second, 0 = unbounded")
    p.add_argument("--deployment", default="credit", help="deployment for generated events/CSV")
    p.add_argument(
        "--id-column",
        default="association_id",
        help="CSV column with each row's association id (default association_id)",
    )
    p.add_argument("--seed", type=int, default=7, help="generator seed")
    p.add_argument("--prefix", help="topic prefix")
    p.set_defaults(func=run)


def _lines(stream: TextIO, fmt: str, deployment: str, id_column: str) -> Iterator[bytes]:
    if fmt == "jsonl":
        for line in stream:
            if line.strip():
                yield line.strip().encode()
        return
    reader = csv.DictReader(stream)
    columns = reader.fieldnames or []
    if id_column not in columns:
        raise ConfigError(
            f"the CSV has no {id_column!r} column (its columns: {', '.join(columns) or 'none'}); "
            "each row needs an id to join its actual later: name the column that identifies "
            "a row with --id-column"
        )
    for row in reader:
        aid = row.pop(id_column, None)
        features: dict[str, Any] = {}
        for name, cell in row.items():
            if cell is None or cell == "":
                features[name] = None
                continue
            try:
                features[name] = float(cell)
            except ValueError:
                features[name] = cell
        yield json.dumps(
            {"association_id": aid, "deployment": deployment, "features": features}
        ).encode()


def _generated(count: int, seed: int, deployment: str) -> Iterator[bytes]:
    from services.trainer.dataset import credit_rows  # the generator behind builtin:credit

    for i, (features, _label) in enumerate(credit_rows(count, seed=seed)):
        yield json.dumps(
            {"association_id": f"gen-{seed}-{i}", "deployment": deployment, "features": features}
        ).encode()


def run(args: argparse.Namespace, environ: dict[str, str]) -> int:
    """Validate, encode and produce; print progress and the acknowledged count."""
    settings = cli_settings(environ, {"topic_prefix": args.prefix})
    namer = TopicNamer(settings.topic_prefix)
    topic = args.topic if args.topic.startswith(namer.prefix) else namer.name(args.topic)
    spec = namer.spec(topic)
    if not args.raw and not spec.json_input:
        raise ConfigError(
            f"{topic} carries {spec.record}, which is not typed by hand; "
            "only events and actuals accept JSON (or use --raw)"
        )
    if args.generator:
        source, total = _generated(args.count, args.seed, args.deployment), args.count
    else:
        stream = sys.stdin if args.file == "-" else open(args.file, encoding="utf-8")  # noqa: SIM115
        source, total = _lines(stream, args.format, args.deployment, args.id_column), None
    producer = Producer(KafkaConfig.from_settings(settings, "streamops-cli").producer())
    counts = {"acked": 0, "failed": 0, "unknown": 0, "invalid": 0}

    def on_delivery(err: Any, _msg: Any) -> None:
        counts[delivery_outcome(err)] += 1

    progress = Progress(f"producing to {topic}", total)
    header = [serde.fingerprint_header(spec.record)]
    started = time.monotonic()
    for n, line in enumerate(source, 1):
        if args.raw:
            value, key = line, None
        else:
            try:
                _, record = serde.decode(line, expected=spec.record, allow_json=True)
            except PoisonMessage as exc:
                counts["invalid"] += 1
                print(f"\nline {n}: {exc} (skipped)", file=sys.stderr)
                continue
            value, key = serde.encode(spec.record, record), record["association_id"]
        produce_waiting(
            producer,
            topic,
            value,
            key,
            headers=None if args.raw else header,
            on_delivery=on_delivery,
            wait_s=0.1,
        )
        producer.poll(0)
        if args.rate > 0:
            time.sleep(max(0.0, started + n / args.rate - time.monotonic()))
        progress.update(n)
    unknown = producer.flush(30) + counts["unknown"]
    progress.done()
    print(
        f"acknowledged {counts['acked']}, failed {counts['failed']}, invalid {counts['invalid']}"
        + (
            f", unknown {unknown} (timed out, perhaps written; check before resending)"
            if unknown
            else ""
        )
    )
    return 0 if not (counts["failed"] or unknown or counts["invalid"]) else 1
