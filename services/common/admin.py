"""Topic administration: create every streamops topic with its configuration, idempotently."""

from __future__ import annotations

import logging
from typing import Any

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

from services.common.errors import RetryableError
from services.common.topics import TopicNamer, TopicSpec

log = logging.getLogger(__name__)


def replication_for(broker_count: int) -> tuple[int, dict[str, str]]:
    """Replication factor and topic config for a cluster of `broker_count` brokers."""
    if broker_count >= 3:
        # With acks=all a write then needs two copies: one broker may die without losing an
        # acknowledged record or stopping producers.
        return 3, {"min.insync.replicas": "2"}
    return max(broker_count, 1), {}


def ensure_topics(
    admin_conf: dict[str, Any],
    namer: TopicNamer,
    only: list[str] | None = None,
    timeout_s: float = 30.0,
) -> dict[str, str]:
    """Create missing topics; returns {physical name: "created" | "exists"}."""
    admin = AdminClient(admin_conf)
    try:
        metadata = admin.list_topics(timeout=timeout_s)
    except KafkaException as exc:
        raise RetryableError(
            f"cannot reach Kafka at {admin_conf.get('bootstrap.servers')}: {exc}; "
            "start it with `streamops infra up` (or `make up`)"
        ) from None
    existing = set(metadata.topics)
    replicas, replicated = replication_for(len(metadata.brokers))
    wanted: list[tuple[str, TopicSpec]] = [
        (name, spec) for name, spec in namer.all() if only is None or spec.logical in only
    ]
    status = {name: "exists" for name, _ in wanted if name in existing}
    new = [
        NewTopic(
            name,
            num_partitions=spec.partitions,
            replication_factor=replicas,
            config={**replicated, **spec.config},
        )
        for name, spec in wanted
        if name not in existing
    ]
    if new:
        for name, future in admin.create_topics(new, request_timeout=timeout_s).items():
            try:
                future.result()
                status[name] = "created"
            except KafkaException as exc:
                if "TOPIC_ALREADY_EXISTS" in str(exc):
                    status[name] = "exists"
                else:
                    raise RetryableError(f"could not create topic {name}: {exc}") from None
    return status


def create_topic(
    admin_conf: dict[str, Any],
    name: str,
    partitions: int,
    config: dict[str, str] | None = None,
    timeout_s: float = 30.0,
) -> None:
    """Create one topic (tests use unique names); fails if it already exists."""
    admin = AdminClient(admin_conf)
    replicas, replicated = replication_for(len(admin.list_topics(timeout=timeout_s).brokers))
    topic = NewTopic(
        name,
        num_partitions=partitions,
        replication_factor=replicas,
        config={**replicated, **(config or {})},
    )
    futures = admin.create_topics([topic], request_timeout=timeout_s)
    futures[name].result()
