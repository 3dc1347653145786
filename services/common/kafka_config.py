"""Kafka client configuration: one typed object, safe defaults, unknown keys rejected.

Snake_case overrides become librdkafka's dotted keys (`linger_ms` -> `linger.ms`). Only keys in
`KNOWN_KEYS` are accepted, so a misspelt option fails at start-up instead of being ignored.
Producers are idempotent with acks=all; consumers never commit on their own: the runner commits
a batch's offsets only after its outputs are delivered.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

from services.common import kafka_security
from services.common.errors import ConfigError
from services.common.settings import CommonSettings, Secret

KNOWN_KEYS = frozenset(
    {
        "acks",
        "auto.commit.interval.ms",
        "auto.offset.reset",
        "batch.num.messages",
        "batch.size",
        "client.id",
        "compression.type",
        "delivery.report.only.error",
        "delivery.timeout.ms",
        "enable.auto.commit",
        "enable.auto.offset.store",
        "enable.idempotence",
        "enable.partition.eof",
        "fetch.max.bytes",
        "fetch.min.bytes",
        "fetch.wait.max.ms",
        "group.instance.id",
        "heartbeat.interval.ms",
        "isolation.level",
        "linger.ms",
        "max.in.flight.requests.per.connection",
        "max.partition.fetch.bytes",
        "max.poll.interval.ms",
        "message.max.bytes",
        "partition.assignment.strategy",
        "queue.buffering.max.kbytes",
        "queue.buffering.max.messages",
        "queued.max.messages.kbytes",
        "queued.min.messages",
        "receive.message.max.bytes",
        "request.timeout.ms",
        "retries",
        "session.timeout.ms",
        "socket.timeout.ms",
        "statistics.interval.ms",
        "transaction.timeout.ms",
        "transactional.id",
    }
)


def _dotted(overrides: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in overrides.items():
        dotted = key.replace("_", ".")
        if dotted not in KNOWN_KEYS:
            raise ConfigError(
                f"unknown Kafka client option {key!r} ({dotted}); "
                "add it to services/common/kafka_config.KNOWN_KEYS if it is real"
            )
        out[dotted] = value
    return out


@dataclasses.dataclass(frozen=True)
class KafkaConfig:
    """Connection settings shared by every client of one service."""

    bootstrap_servers: str
    client_id: str
    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str = ""
    sasl_username: str = ""
    sasl_password: Secret = Secret("")
    ssl_ca_location: str = ""

    @classmethod
    def from_settings(
        cls, settings: CommonSettings, client_id: str, principal: str | None = None
    ) -> KafkaConfig:
        """Build from a service's settings.

        An unset protocol is the local broker's, whose login (principal, password, CA) is then
        found under var/ (services/common/kafka_security.py)."""
        protocol = settings.kafka_security_protocol or kafka_security.protocol(settings.var_dir)
        mechanism, username = settings.kafka_sasl_mechanism, settings.kafka_sasl_username
        secret, ca = settings.kafka_sasl_password, settings.kafka_ssl_ca_location
        if protocol.upper().startswith("SASL") and not settings.kafka_security_protocol:
            username = username or principal or kafka_security.principal_of(settings.service)
            mechanism = mechanism or kafka_security.MECHANISM
            secret = secret or kafka_security.password(settings.var_dir, username)
            ca = ca or kafka_security.ca_location(settings.var_dir)
        return cls(
            bootstrap_servers=settings.kafka_bootstrap,
            client_id=client_id,
            security_protocol=protocol,
            sasl_mechanism=mechanism,
            sasl_username=username,
            sasl_password=secret,
            ssl_ca_location=ca,
        )

    @classmethod
    def local(
        cls, bootstrap: str, var_dir: str | os.PathLike[str], client_id: str, principal: str
    ) -> KafkaConfig:
        """`principal`'s login to the local broker whose var dir is `var_dir` (PLAINTEXT when
        that broker is the open one)."""
        if not kafka_security.protocol(var_dir).upper().startswith("SASL"):
            return cls(bootstrap, client_id)
        return cls(
            bootstrap_servers=bootstrap,
            client_id=client_id,
            security_protocol="SASL_SSL",
            sasl_mechanism=kafka_security.MECHANISM,
            sasl_username=principal,
            sasl_password=kafka_security.password(var_dir, principal),
            ssl_ca_location=kafka_security.ca_location(var_dir),
        )

    def environment(self) -> dict[str, str]:
        """This login as `STREAMOPS_KAFKA_*` variables, for a child process (never its argv)."""
        if not self.secured:
            return {"STREAMOPS_KAFKA_SECURITY_PROTOCOL": self.security_protocol}
        return {
            "STREAMOPS_KAFKA_SECURITY_PROTOCOL": self.security_protocol,
            "STREAMOPS_KAFKA_SASL_MECHANISM": self.sasl_mechanism,
            "STREAMOPS_KAFKA_SASL_USERNAME": self.sasl_username,
            "STREAMOPS_KAFKA_SASL_PASSWORD": self.sasl_password.reveal(),
            "STREAMOPS_KAFKA_SSL_CA_LOCATION": self.ssl_ca_location,
        }

    @property
    def secured(self) -> bool:
        """True when clients log in (SASL), so the broker has ACLs to keep."""
        return self.security_protocol.upper().startswith("SASL")

    def _connection(self) -> dict[str, Any]:
        conf: dict[str, Any] = {
            "bootstrap.servers": self.bootstrap_servers,
            "client.id": self.client_id,
            "security.protocol": self.security_protocol,
        }
        if self.sasl_mechanism:
            conf["sasl.mechanism"] = self.sasl_mechanism
            conf["sasl.username"] = self.sasl_username
            conf["sasl.password"] = self.sasl_password.reveal()
        if self.ssl_ca_location:
            conf["ssl.ca.location"] = self.ssl_ca_location
        return conf

    def producer(self, **overrides: Any) -> dict[str, Any]:
        """Idempotent, acks=all producer config; `transactional_id=` turns on transactions."""
        conf = self._connection()
        conf.update(
            {
                "enable.idempotence": True,
                "acks": "all",
                "linger.ms": 5,
                "compression.type": "lz4",
                "message.max.bytes": 33554432,
                "queue.buffering.max.messages": 1_000_000,
            }
        )
        conf.update(_dotted(overrides))
        return conf

    def consumer(self, group_id: str, **overrides: Any) -> dict[str, Any]:
        """Consumer config; the runner commits offsets only after outputs are delivered."""
        conf = self._connection()
        conf.update(
            {
                "group.id": group_id,
                "enable.auto.commit": False,
                "enable.auto.offset.store": False,
                "auto.offset.reset": "earliest",
                "isolation.level": "read_committed",
                "partition.assignment.strategy": "cooperative-sticky",
                "fetch.max.bytes": 52428800,
                "max.partition.fetch.bytes": 33554432,
                "receive.message.max.bytes": 60000000,
                "session.timeout.ms": 10000,
                "heartbeat.interval.ms": 2000,
                "max.poll.interval.ms": 300000,
            }
        )
        conf.update(_dotted(overrides))
        return conf

    def admin(self) -> dict[str, Any]:
        """Admin client config."""
        return self._connection()

    def __repr__(self) -> str:
        return (
            f"KafkaConfig(bootstrap_servers={self.bootstrap_servers!r}, "
            f"client_id={self.client_id!r}, security_protocol={self.security_protocol!r}, "
            f"sasl_username={self.sasl_username!r}, sasl_password={self.sasl_password!r})"
        )
