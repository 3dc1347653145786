"""`streamops consume`: tail any streamops topic, decoded to JSON lines on stdout.

Reads with no consumer group (partitions assigned directly), so tailing never moves a
service's offsets. Bytes fields are shown base64-encoded (model bytes only by size).
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
import time
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, OFFSET_END, Consumer, KafkaError, TopicPartition

from services.cli.cli_settings import cli_settings
from services.common import serde
from services.common.errors import PoisonMessage, StreamopsError
from services.common.kafka_config import KafkaConfig
from services.common.topics import TopicNamer

BIG_BYTES = 4096


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register `consume`."""
    p = sub.add_parser("consume", help="print a topic's records as JSON lines")
    p.add_argument("--topic", required=True, help="logical (predictions) or physical name")
    p.add_argument("--from", dest="start", choices=("beginning", "end"), default="beginning")
    p.add_argument("--max", type=int, default=0, help="stop after N records (0 = no limit)")
    p.add_argument(
        "--idle-timeout",
        type=float,
        default=0.0,
        help="stop after S seconds without records (0 = follow forever)",
    )
    p.add_argument("--prefix", help="topic prefix")
    p.set_defaults(func=run)


def jsonable(value: Any) -> Any:
    """Make a decoded record printable as JSON (bytes as base64, big ones by size)."""
    if isinstance(value, bytes):
        if len(value) > BIG_BYTES:
            return f"<{len(value)} bytes>"
        return base64.b64encode(value).decode()
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [jsonable(v) for v in value]
    return value


def run(args: argparse.Namespace, environ: dict[str, str]) -> int:
    """Assign every partition and print records until --max or --idle-timeout."""
    settings = cli_settings(environ, {"topic_prefix": args.prefix})
    namer = TopicNamer(settings.topic_prefix)
    topic = args.topic if args.topic.startswith(namer.prefix) else namer.name(args.topic)
    conf = KafkaConfig.from_settings(settings, "streamops-cli").consumer(
        "streamops-cli-tail", enable_auto_commit=False
    )
    consumer = Consumer(conf)
    meta = consumer.list_topics(topic, timeout=10).topics.get(topic)
    if meta is None or meta.error is not None:
        raise StreamopsError(f"topic {topic} not found; create topics with `streamops topics`")
    start = OFFSET_BEGINNING if args.start == "beginning" else OFFSET_END
    consumer.assign([TopicPartition(topic, p, start) for p in meta.partitions])
    try:
        expected: str | None = namer.record_for(topic)
    except KeyError:  # not one of ours: Avro records still name themselves
        expected = None
    seen, last_record = 0, time.monotonic()
    try:
        while not args.max or seen < args.max:
            msg = consumer.poll(0.2)
            if msg is None:
                if args.idle_timeout and time.monotonic() - last_record > args.idle_timeout:
                    break
                continue
            if msg.error():
                if msg.error().code() != KafkaError._PARTITION_EOF:
                    print(f"consumer error: {msg.error()}", file=sys.stderr)
                continue
            last_record = time.monotonic()
            seen += 1
            line: dict[str, Any] = {"partition": msg.partition(), "offset": msg.offset()}
            try:
                # JSON is read as the topic's own record; Avro names its record itself.
                name, record = serde.decode(msg.value() or b"", expected=expected, allow_json=True)
                line.update(record=name, value=jsonable(record))
            except PoisonMessage as exc:
                line.update(error=str(exc), raw=jsonable(msg.value() or b""))
            print(json.dumps(line), flush=True)
    finally:
        consumer.close()
    return 0
