"""`streamops deadletters`: the dead-letter topic grouped by the source record each letter refused.

One bad event read by the scorer and by drift gives two dead letters; this view shows it once,
with its source coordinates, the reasons and every service that refused it. Reads with no
consumer group, up to the end of the topic as it is when the command starts.

>>> since_ms("15m", now_ms=3_600_000), since_ms("2h", now_ms=10_000_000), since_ms(None)
(2700000, 2800000, None)
"""

from __future__ import annotations

import argparse
import json
import re
import time
from collections.abc import Iterable, Mapping
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition

from services.cli.cli_settings import cli_settings
from services.common import refused_sources, serde
from services.common.errors import ConfigError, PoisonMessage, StreamopsError
from services.common.kafka_config import KafkaConfig
from services.common.topics import TopicNamer

UNITS_MS = {"s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register `deadletters`."""
    p = sub.add_parser(
        "deadletters", help="dead letters grouped by source record, with the refusing services"
    )
    p.add_argument("--since", help="only letters written in the last 30s | 15m | 2h | 1d")
    p.add_argument("--limit", type=int, default=50, help="show at most N records (newest)")
    p.add_argument("--json", action="store_true", help="one JSON object per source record")
    p.add_argument("--prefix", help="topic prefix")
    p.set_defaults(func=run)


def since_ms(text: str | None, now_ms: int | None = None) -> int | None:
    """The epoch milliseconds `--since` means (None: from the beginning)."""
    if not text:
        return None
    found = re.fullmatch(r"\s*(\d+)\s*([smhd])\s*", text)
    if found is None:
        raise ConfigError(f"--since {text!r}: use a number and s, m, h or d (e.g. 15m)")
    now = int(time.time() * 1000) if now_ms is None else now_ms
    return now - int(found.group(1)) * UNITS_MS[found.group(2)]


def render(groups: list[refused_sources.RefusedSource], limit: int) -> list[str]:
    """Text lines: one per source record (newest last), then the summary."""
    shown = groups[-limit:] if limit > 0 else groups
    lines = []
    if len(shown) < len(groups):
        lines.append(f"... {len(groups) - len(shown)} older records not shown (--limit)")
    for g in shown:
        refusals = ", ".join(f"{svc} ({why})" for svc, why in sorted(g.services.items()))
        letters = f"  [{g.letters} letters]" if g.letters > len(g.services) else ""
        lines.append(f"{g.topic}[{g.partition}]@{g.offset}  refused by {refusals}{letters}")
    lines.append(f"total: {refused_sources.summary(groups)}")
    return lines


def as_json(g: refused_sources.RefusedSource) -> dict[str, Any]:
    """One source record as a JSON-able dict."""
    return {
        "source_topic": g.topic,
        "source_partition": g.partition,
        "source_offset": g.offset,
        "refused_by": dict(sorted(g.services.items())),
        "stages": sorted(g.stages),
        "letters": g.letters,
        "first_at": g.first_at,
        "last_at": g.last_at,
    }


def read_letters(
    conf: Mapping[str, Any], topic: str, start_ms: int | None
) -> Iterable[dict[str, Any]]:
    """Every decodable DeadLetter on `topic` (from `start_ms` when given), up to its end now."""
    consumer = Consumer({**conf, "enable.partition.eof": True})
    try:
        meta = consumer.list_topics(topic, timeout=10).topics.get(topic)
        if meta is None or meta.error is not None:
            raise StreamopsError(f"topic {topic} not found; create topics with `streamops topics`")
        parts = [TopicPartition(topic, p, OFFSET_BEGINNING) for p in meta.partitions]
        if start_ms is not None:
            wanted = [TopicPartition(topic, p, start_ms) for p in meta.partitions]
            parts = consumer.offsets_for_times(wanted, timeout=10)
        ends = {}
        for tp in parts:
            lo, hi = consumer.get_watermark_offsets(TopicPartition(topic, tp.partition), 10)
            if hi > max(lo, tp.offset if tp.offset >= 0 else lo):
                ends[tp.partition] = hi
        active = [tp for tp in parts if tp.partition in ends]
        if not active:
            return
        consumer.assign(active)
        while ends:
            msg = consumer.poll(1.0)
            if msg is None:
                continue
            if msg.error():
                if msg.error().code() == KafkaError._PARTITION_EOF:
                    ends.pop(msg.partition(), None)
                continue
            if msg.offset() + 1 >= ends.get(msg.partition(), 0):
                ends.pop(msg.partition(), None)
            try:
                yield serde.decode(msg.value() or b"", expected="DeadLetter")[1]
            except PoisonMessage:
                continue  # not a dead letter: nothing to group
    finally:
        consumer.close()


def run(args: argparse.Namespace, environ: dict[str, str]) -> int:
    """Read the dead-letter topic and print it grouped by source record."""
    settings = cli_settings(environ, {"topic_prefix": args.prefix})
    namer = TopicNamer(settings.topic_prefix)
    conf = KafkaConfig.from_settings(settings, "streamops-cli").consumer(
        "streamops-cli-deadletters", enable_auto_commit=False
    )
    groups = refused_sources.group(read_letters(conf, namer.deadletter, since_ms(args.since)))
    if args.json:
        shown = groups[-args.limit :] if args.limit > 0 else groups
        for g in shown:
            print(json.dumps(as_json(g)))
        return 0
    for line in render(groups, args.limit):
        print(line)
    return 0
