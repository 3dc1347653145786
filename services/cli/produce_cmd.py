"""`streamops produce`: JSON lines, CSV or a built-in generator onto a topic, delivery checked.

Every record is validated and encoded exactly as the services will decode it; `--raw` sends the
lines verbatim instead (to try out the dead-letter path). CSV rows are read by `csv_rows`: the
label column is never a feature (`--actuals` sends it as Actuals, after the events), and where
the deployment's champion is known, rows it would refuse are not sent. A bad line or row is
reported with its line number and skipped, never fatal; it makes the exit status 1. The counts
printed at the end are of *acknowledged* messages: a message whose delivery timed out is
reported as unknown, never blindly resent (it may have been written).
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import time
from collections.abc import Iterator
from typing import Any, TextIO

from confluent_kafka import Producer

from services.cli.cli_settings import cli_settings
from services.cli.csv_rows import Champion, CsvRows, Row, find_champion
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
    p.add_argument(
        "--label-column",
        help="CSV column with each row's label, never sent as a feature "
        "(default: the column the champion was trained to predict, when known)",
    )
    p.add_argument(
        "--actuals",
        action="store_true",
        help="also send each CSV row's label as an Actual on the actuals topic, after the events",
    )
    p.add_argument("--seed", type=int, default=7, help="generator seed")
    p.add_argument("--prefix", help="topic prefix")
    p.set_defaults(func=run)


def _jsonl(stream: TextIO) -> Iterator[Row]:
    for n, line in enumerate(stream, 1):
        if line.strip():
            yield Row(n, line.strip().encode("utf-8", "surrogateescape"))


def _generated(count: int, seed: int, deployment: str) -> Iterator[Row]:
    from services.trainer.dataset import credit_rows  # the generator behind builtin:credit

    for i, (features, _label) in enumerate(credit_rows(count, seed=seed)):
        event = {"association_id": f"gen-{seed}-{i}", "deployment": deployment}
        yield Row(i + 1, json.dumps({**event, "features": features}).encode())


def _open(path: str) -> TextIO:
    # Undecodable bytes make one bad line, not a crash; a BOM (spreadsheet exports) is dropped.
    binary = sys.stdin.buffer if path == "-" else open(path, "rb")  # noqa: SIM115
    return io.TextIOWrapper(binary, encoding="utf-8-sig", errors="surrogateescape", newline="")


class _Sender:
    """Validates, encodes and produces one topic's records; counts deliveries and skipped lines."""

    def __init__(self, producer: Producer, topic: str, record: str, raw: bool = False) -> None:
        self.producer, self.topic, self.record, self.raw = producer, topic, record, raw
        self.counts = {"acked": 0, "failed": 0, "unknown": 0, "invalid": 0, "refused": 0}
        self.skipped: dict[str, list[int]] = {}  # kind of problem -> line numbers
        self._header = [serde.fingerprint_header(record)]

    def _on_delivery(self, err: Any, _msg: Any) -> None:
        self.counts[delivery_outcome(err)] += 1

    def skip(self, line: int, kind: str, why: str, count: str = "invalid") -> None:
        """Count and report a line that is not sent."""
        self.counts[count] += 1
        self.skipped.setdefault(kind, []).append(line)
        print(f"\nline {line}: {why} (skipped)", file=sys.stderr)

    def send(self, line: int, value: bytes, champion: Champion | None = None) -> bool:
        """Produce one line's record unless it is invalid or the champion would refuse it."""
        key = None
        if not self.raw:
            try:
                _, record = serde.decode(value, expected=self.record, allow_json=True)
            except PoisonMessage as exc:
                self.skip(line, exc.reason.value, str(exc))
                return False
            refusal = champion.refusal(record["features"]) if champion else None
            if refusal is not None:
                why = f"{refusal}; {champion} would refuse it"
                self.skip(line, f"refused: {refusal.reason.value}", why, "refused")
                return False
            value, key = serde.encode(self.record, record), record["association_id"]
        produce_waiting(
            self.producer,
            self.topic,
            value,
            key,
            headers=None if self.raw else self._header,
            on_delivery=self._on_delivery,
            wait_s=0.1,
        )
        self.producer.poll(0)
        return True

    def finish(self, progress: Progress) -> bool:
        """Wait for deliveries, print the counts and the skipped lines; True if all is well."""
        unknown = self.producer.flush(30) + self.counts["unknown"]
        progress.done()
        c = self.counts
        print(
            f"{self.topic}: acknowledged {c['acked']}, failed {c['failed']}, "
            f"invalid {c['invalid']}, refused {c['refused']}"
            + (f", unknown {unknown} (timed out, perhaps written; check first)" if unknown else "")
        )
        for kind, lines in self.skipped.items():
            more = ", ..." if len(lines) > 5 else ""
            print(f"  skipped {len(lines)} ({kind}): line {', '.join(map(str, lines[:5]))}{more}")
        return not (c["failed"] or unknown or c["invalid"] or c["refused"])


def run(args: argparse.Namespace, environ: dict[str, str]) -> int:
    """Validate, encode and produce; print progress and the acknowledged counts."""
    settings = cli_settings(environ, {"topic_prefix": args.prefix})
    namer = TopicNamer(settings.topic_prefix)
    topic = args.topic if args.topic.startswith(namer.prefix) else namer.name(args.topic)
    spec = namer.spec(topic)
    from_csv = args.format == "csv" and not args.generator
    if not args.raw and not spec.json_input:
        raise ConfigError(
            f"{topic} carries {spec.record}, which is not typed by hand; "
            "only events, predictions and actuals accept JSON (or use --raw)"
        )
    if from_csv and spec.record != "FeatureEvent":
        raise ConfigError("CSV rows become FeatureEvents: use --topic events (labels: --actuals)")
    if args.actuals and not from_csv:
        raise ConfigError("--actuals sends a CSV's label column: use it with --format csv")
    kafka = KafkaConfig.from_settings(settings, "streamops-cli")
    rows, champion = None, None
    if args.generator:
        source, total = _generated(args.count, args.seed, args.deployment), args.count
    elif from_csv:
        if not args.raw:
            conf = kafka.consumer("streamops-cli-produce")
            champion, found = find_champion(conf, namer, args.deployment)
            print(found, file=sys.stderr)
        rows = CsvRows(
            _open(args.file),
            args.deployment,
            args.id_column,
            args.label_column,
            champion,
            args.actuals,
        )
        if rows.left_out:
            print(f"left out of the features: {', '.join(rows.left_out)}", file=sys.stderr)
        source, total = iter(rows), None
    else:
        source, total = _jsonl(_open(args.file)), None
    producer = Producer(kafka.producer())
    events = _Sender(producer, topic, spec.record, args.raw)
    labelled: list[Row] = []
    progress = Progress(f"producing to {topic}", total)
    started = time.monotonic()
    for n, row in enumerate(source, 1):
        if row.problem:
            events.skip(row.line, row.kind, row.problem)
        elif events.send(row.line, row.value, champion) and row.actual is not None:
            labelled.append(row)
        if args.rate > 0:
            time.sleep(max(0.0, started + n / args.rate - time.monotonic()))
        progress.update(n)
    ok = events.finish(progress)
    if rows is not None and rows.actuals:  # after the events, whose delivery is now known
        actuals = _Sender(producer, namer.actuals, "Actual")
        progress = Progress(f"producing to {namer.actuals}", len(labelled))
        for n, row in enumerate(labelled, 1):
            actuals.send(row.line, row.actual or b"")
            progress.update(n)
        ok = actuals.finish(progress) and ok
        if rows.unlabelled:
            print(f"  {rows.unlabelled} rows had no label: their events were sent, no actual")
    return 0 if ok else 1
