"""Topic administration: create every streamops topic with its configuration, idempotently,
and on the secured broker the ACLs of services/common/kafka_acls.py for its prefix."""

from __future__ import annotations

import logging
import secrets
import time
from typing import Any

from confluent_kafka import KafkaException
from confluent_kafka.admin import (
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    AdminClient,
    NewTopic,
    ResourcePatternType,
    ResourceType,
    ScramCredentialInfo,
    ScramMechanism,
    UserScramCredentialUpsertion,
)

from services.common import kafka_acls, kafka_security, secret_files
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
    """Create missing topics, and their ACLs when a super user asks on the secured broker;
    returns {physical name: "created" | "exists"}."""
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
                elif "AUTHORIZATION_FAILED" in str(exc):
                    raise RetryableError(
                        f"topic {name} is missing and {admin_conf.get('sasl.username')!r} may "
                        "not create it on the secured broker: create the topics as admin with "
                        "`streamops topics` (or `make up`)"
                    ) from None
                else:
                    raise RetryableError(f"could not create topic {name}: {exc}") from None
    # A super user (the CLI's admin) making topics on the secured broker makes their ACLs too;
    # a service making its own topics at start cannot, and needs not.
    if admin_conf.get("sasl.username") in kafka_acls.SUPER_USERS:
        apply_acls(admin_conf, namer, timeout_s)
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


def _bindings(namer: TopicNamer) -> list[AclBinding]:
    """Every ACL of the table in services/common/kafka_acls.py under this topic prefix."""
    out = []

    def allow(
        kind: ResourceType, name: str, pattern: ResourcePatternType, who: str, op: AclOperation
    ) -> None:
        out.append(AclBinding(kind, name, pattern, f"User:{who}", "*", op, AclPermissionType.ALLOW))

    for who, grants in kafka_acls.GRANTS.items():
        for logical in grants.reads:
            allow(
                ResourceType.TOPIC,
                namer.name(logical),
                ResourcePatternType.LITERAL,
                who,
                AclOperation.READ,
            )
        for logical in grants.writes:
            allow(
                ResourceType.TOPIC,
                namer.name(logical),
                ResourcePatternType.LITERAL,
                who,
                AclOperation.WRITE,
            )
        for prefix in kafka_acls.owned_prefixes(who, namer.prefix):
            allow(ResourceType.GROUP, prefix, ResourcePatternType.PREFIXED, who, AclOperation.READ)
            for op in (AclOperation.WRITE, AclOperation.DESCRIBE):
                allow(ResourceType.TRANSACTIONAL_ID, prefix, ResourcePatternType.PREFIXED, who, op)
            if grants.owns_topics:
                allow(
                    ResourceType.TOPIC, prefix, ResourcePatternType.PREFIXED, who, AclOperation.ALL
                )
    return out


def apply_acls(admin_conf: dict[str, Any], namer: TopicNamer, timeout_s: float = 30.0) -> int:
    """Create the table's ACLs for this topic prefix (idempotent); returns how many."""
    bindings = _bindings(namer)
    # Quiet: librdkafka notes at info level the requests it drops when this client goes away.
    admin = AdminClient({**admin_conf, "log_level": 3})
    for binding, future in admin.create_acls(bindings, request_timeout=timeout_s).items():
        try:
            future.result()
        except KafkaException as exc:
            raise RetryableError(
                f"could not create the ACL {binding}: {exc}; the admin principal must be a "
                "super user of the secured broker (infra/kafka/security.sh)"
            ) from None
    # The brokers' authorizers apply new ACLs from the metadata log a moment later: a service
    # started right after `make up` must not meet the gap as an authorization failure.
    wanted = {
        (b.restype, b.name, b.resource_pattern_type, b.principal, b.operation) for b in bindings
    }
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        held = admin.describe_acls(ANY_ACL, request_timeout=timeout_s).result()
        if wanted <= {
            (b.restype, b.name, b.resource_pattern_type, b.principal, b.operation) for b in held
        }:
            return len(bindings)
        time.sleep(0.2)
    raise RetryableError(f"the broker did not show the {len(bindings)} ACLs within {timeout_s}s")


ANY_ACL = AclBindingFilter(
    ResourceType.ANY,
    None,
    ResourcePatternType.ANY,
    None,
    None,
    AclOperation.ANY,
    AclPermissionType.ANY,
)


def rotate_password(admin_conf: dict[str, Any], var_dir: str, principal: str) -> None:
    """Give a principal a new random SCRAM password on the broker, then in its var/ file.

    In that order: if the broker refuses, the file still holds the password that works. The
    principal's running clients keep their sessions; they need the new password (a restart)
    only when they next log in.
    """
    if principal not in kafka_acls.PRINCIPALS or principal == "broker":
        raise RetryableError(
            f"cannot rotate {principal!r}: one of "
            + ", ".join(p for p in kafka_acls.PRINCIPALS if p != "broker")
            + " (the broker's own password is in its properties: start over to change it)"
        )
    new = secrets.token_urlsafe(24)
    change = UserScramCredentialUpsertion(
        principal, ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 8192), new.encode()
    )
    admin = AdminClient(admin_conf)
    for future in admin.alter_user_scram_credentials([change], request_timeout=30).values():
        try:
            future.result()
        except KafkaException as exc:
            raise RetryableError(
                f"the broker refused the new password of {principal}: {exc}"
            ) from None
    folder = kafka_security.security_dir(var_dir)
    secret_files.write(folder / "users" / principal, new + "\n")
    tool_settings = folder / f"{principal}.properties"  # kcat's copy (infra/kafka/security.sh)
    if tool_settings.exists():
        lines = tool_settings.read_text(encoding="utf-8").splitlines()
        lines = [f"sasl.password={new}" if x.startswith("sasl.password=") else x for x in lines]
        secret_files.write(tool_settings, "\n".join(lines) + "\n")
