"""R18: the secured broker refuses whoever has no credentials, and each principal gets its table.

A private broker started by infra/kafka/kafka.sh as `make up` starts it (SASL_SSL with
SCRAM-SHA-512 over TLS, the StandardAuthorizer, nothing allowed without an ACL). Its topics and
ACLs come from the project's own topic creation as the admin principal, the way `streamops
infra up` makes them. Then: an anonymous client and a wrong password can do nothing; every
principal of services/common/kafka_acls.py is tried on every topic, and what it may write,
read, join and create is exactly what the table says.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from services.common import kafka_acls, kafka_security
from services.common.admin import ANY_ACL, ensure_topics
from services.common.kafka_config import KafkaConfig
from services.common.settings import CommonSettings
from services.common.topics import TOPIC_SPECS, TopicNamer
from tests.broker_support import PrivateKafka, private_kafka

pytestmark = pytest.mark.integration

QUIET = {"log_level": 0}
PREFIX = "sec."


@pytest.fixture(scope="module")
def broker(tmp_path_factory) -> Iterator[PrivateKafka]:
    """One secured broker for the module, its topics and ACLs made by the admin principal."""
    for kafka in private_kafka(tmp_path_factory.mktemp("secured"), 1, secured=True):
        admin = login(kafka, "cli")
        assert admin.sasl_username == "admin" and admin.security_protocol == "SASL_SSL"
        ensure_topics(admin.admin(), TopicNamer(PREFIX))
        seed = Producer({**admin.producer(), **QUIET})
        for spec in TOPIC_SPECS:  # one record each, for the readers to find
            seed.produce(PREFIX + spec.logical, b"seed", b"k", partition=0)
        assert seed.flush(30) == 0
        yield kafka


def login(kafka: PrivateKafka, service: str) -> KafkaConfig:
    """A service's Kafka config, found under the broker's var/ exactly as the service finds it."""
    settings = CommonSettings(kafka_bootstrap=kafka.bootstrap, var_dir=str(kafka.var_dir))
    principal = kafka_security.principal_of(service)
    return KafkaConfig.from_settings(settings, f"test-{service}", principal=principal)


def _produce_errors(conf: dict, topics: list[str]) -> dict[str, str | None]:
    producer = Producer({**conf, **QUIET, "message.timeout.ms": 15000})
    errors: dict[str, str | None] = {}
    for topic in topics:
        producer.produce(
            topic, b"x", b"k", on_delivery=lambda err, msg, t=topic: errors.__setitem__(t, err)
        )
    producer.flush(30)
    return {t: (e.name() if e else None) for t, e in errors.items()}


def _read_results(conf: dict, topics: list[str]) -> dict[str, str | None]:
    """Per topic: None when a record was read, else the error the broker answered."""
    consumer = Consumer({**conf, **QUIET, "enable.partition.eof": False})
    results: dict[str, str | None] = {}
    try:
        consumer.assign([TopicPartition(t, 0, 0) for t in topics])
        deadline = 40
        while len(results) < len(topics) and deadline:
            deadline -= 1
            for msg in consumer.consume(100, timeout=0.5):
                if msg.error():
                    if msg.topic() and msg.topic() in topics:
                        results.setdefault(msg.topic(), msg.error().name())
                else:
                    results[msg.topic()] = None
    finally:
        consumer.close()
    return results


def _refusal(conf: dict, topic: str) -> str:
    """What one subscriber of `topic` met: the broker's error, a record, or nothing in 4 s."""
    consumer = Consumer({**conf, **QUIET})
    try:
        consumer.subscribe([topic])
        for _ in range(16):
            msg = consumer.poll(0.25)
            if msg is not None:
                return msg.error().name() if msg.error() else "a record"
        return "nothing read"
    finally:
        consumer.close()


def test_the_login_files_are_private(broker: PrivateKafka) -> None:
    """Passwords, the CA key and the broker's properties are readable by their owner only."""
    sec = broker.var_dir / "kafka-security"
    private = [sec / "ca.key", sec / "broker.pem", broker.var_dir / "kafka" / "server.properties"]
    private += sorted((sec / "users").iterdir())
    assert {p.name for p in (sec / "users").iterdir()} == set(kafka_acls.PRINCIPALS)
    for path in private:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert stat.S_IMODE(sec.stat().st_mode) == 0o700
    assert not (sec / "format.args").exists()  # the passwords' argument file is gone


@pytest.mark.parametrize("who", ["anonymous", "wrong password"])
def test_no_credentials_no_access(broker: PrivateKafka, who: str) -> None:
    """Neither produces, consumes, lists, creates nor deletes anything."""
    if who == "anonymous":
        conf = {"bootstrap.servers": broker.bootstrap}
    else:
        conf = login(broker, "cli").admin()
        conf["sasl.password"] = "not-the-password"
    conf.update({**QUIET, "socket.timeout.ms": 2000})
    topic = PREFIX + "models"
    errors = _produce_errors({**conf, "message.timeout.ms": 2000}, [topic])
    assert errors[topic] is not None
    reader = Consumer({**conf, "group.id": "anyone"})
    reader.assign([TopicPartition(topic, 0, 0)])
    assert [m for m in reader.consume(10, timeout=2) if not m.error()] == []
    reader.close()
    admin = AdminClient(conf)
    with pytest.raises(KafkaException):
        admin.list_topics(timeout=2)
    created = admin.create_topics([NewTopic(f"{PREFIX}evil", 1, 1)], request_timeout=2)
    with pytest.raises(KafkaException):
        created[f"{PREFIX}evil"].result()
    deleted = admin.delete_topics([topic], request_timeout=2)
    with pytest.raises(KafkaException):
        deleted[topic].result()
    survivors = AdminClient({**login(broker, "cli").admin(), **QUIET}).list_topics(timeout=10)
    assert topic in survivors.topics and f"{PREFIX}evil" not in survivors.topics


@pytest.mark.parametrize("principal", sorted(kafka_acls.GRANTS))
def test_each_principal_writes_and_reads_exactly_its_table(
    broker: PrivateKafka, principal: str
) -> None:
    """Every topic is tried: allowed where the table says, TOPIC_AUTHORIZATION_FAILED elsewhere."""
    kafka = login(broker, principal)
    assert kafka.sasl_username == principal
    grants = kafka_acls.GRANTS[principal]
    topics = [PREFIX + spec.logical for spec in TOPIC_SPECS]

    written = _produce_errors(kafka.producer(), topics)
    expected = {
        PREFIX + s.logical: (None if s.logical in grants.writes else "TOPIC_AUTHORIZATION_FAILED")
        for s in TOPIC_SPECS
    }
    assert written == expected

    group = f"streamops-{principal}-acl-test"
    allowed = [PREFIX + t for t in grants.reads]
    assert _read_results(kafka.consumer(group), allowed) == dict.fromkeys(allowed)
    # librdkafka reports a refused topic to a subscriber (an assigned reader just reads nothing),
    # and a refusal can stall a reader's other topics: one subscriber per refused topic.
    refused = [t for t in topics if t not in allowed]
    with ThreadPoolExecutor(max_workers=6) as pool:
        answers = pool.map(lambda t: _refusal(kafka.consumer(group), t), refused)
        read = dict(zip(refused, answers, strict=True))
    assert read == dict.fromkeys(refused, "TOPIC_AUTHORIZATION_FAILED")

    admin = AdminClient({**kafka.admin(), **QUIET})
    name = f"{PREFIX}made-by-{principal}-{uuid.uuid4().hex[:6]}"
    with pytest.raises(KafkaException, match="AUTHORIZATION"):
        admin.create_topics([NewTopic(name, 1, 1)], request_timeout=10)[name].result()
    target = PREFIX + "governance"
    with pytest.raises(KafkaException, match="AUTHORIZATION"):
        admin.delete_topics([target], request_timeout=10)[target].result()


def test_a_service_cannot_join_another_services_group(broker: PrivateKafka) -> None:
    """The scorer's login may not commit offsets as drift's consumer group."""
    kafka = login(broker, "scorer")
    topic = PREFIX + "events"
    consumer = Consumer({**kafka.consumer("streamops-drift"), **QUIET})
    consumer.subscribe([topic])
    errors = []
    for _ in range(20):
        msg = consumer.poll(0.5)
        if msg is not None and msg.error():
            errors.append(msg.error().code())
            break
    consumer.close()
    assert KafkaError.GROUP_AUTHORIZATION_FAILED in errors


def test_acls_on_the_broker_are_the_table(broker: PrivateKafka) -> None:
    """What the broker holds for the service principals is the table's bindings, no more."""
    from confluent_kafka.admin import (
        AclOperation,
        AclPermissionType,
        ResourcePatternType,
        ResourceType,
    )

    admin = AdminClient({**login(broker, "cli").admin(), **QUIET})
    held = admin.describe_acls(ANY_ACL, request_timeout=10).result()
    writes = {
        (b.principal.removeprefix("User:"), b.name.removeprefix(PREFIX))
        for b in held
        if b.restype == ResourceType.TOPIC
        and b.operation == AclOperation.WRITE
        and b.resource_pattern_type == ResourcePatternType.LITERAL
    }
    table = {(p, t) for p, g in kafka_acls.GRANTS.items() for t in g.writes}
    assert writes == table
    assert {p for p, t in writes if t == "models"} == {"trainer"}
    assert {p for p, t in writes if t in ("deployments", "governance")} == {"registry"}
    assert all(b.permission_type == AclPermissionType.ALLOW for b in held)


def test_kafka_config_needs_the_password_file(tmp_path: Path) -> None:
    """A secured local broker with no password for the service: a clear error, not a hang."""
    sec = tmp_path / "kafka-security"
    sec.mkdir()
    (sec / "protocol").write_text("SASL_SSL\n")
    settings = CommonSettings(var_dir=str(tmp_path))
    with pytest.raises(Exception, match="no Kafka password for 'common'"):
        KafkaConfig.from_settings(settings, "x")


def test_rotating_a_password_refuses_the_old_one(broker: PrivateKafka) -> None:
    """`streamops infra rotate-password drift`: the old password stops working, the new works."""
    old = login(broker, "drift")
    env = {**os.environ, **broker.env, "STREAMOPS_KAFKA_BOOTSTRAP": broker.bootstrap}
    done = subprocess.run(
        [sys.executable, "-m", "services.cli", "infra", "rotate-password", "drift"],
        check=False,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "new Kafka password for drift" in done.stdout
    assert old.sasl_password.reveal() not in done.stdout + done.stderr
    new = login(broker, "drift")
    assert new.sasl_password != old.sasl_password
    stale = {**old.admin(), **QUIET, "socket.timeout.ms": 2000}
    with pytest.raises(KafkaException):
        AdminClient(stale).list_topics(timeout=3)
    topic = PREFIX + "drift"
    assert _produce_errors(new.producer(), [topic]) == {topic: None}
