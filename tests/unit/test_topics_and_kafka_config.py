"""Topic names and specs, and the Kafka client configuration object."""

from __future__ import annotations

import pytest

from services.common.errors import ConfigError
from services.common.kafka_config import KafkaConfig
from services.common.settings import CommonSettings, Secret, load_settings
from services.common.topics import TOPIC_SPECS, TopicNamer

pytestmark = pytest.mark.unit

DESIGN_TOPICS = {
    "events",
    "predictions",
    "actuals",
    "models",
    "deployments",
    "drift",
    "breaches",
    "retrain",
    "governance",
    "deadletter",
}


def test_every_design_topic_is_spelled_once_under_the_prefix():
    namer = TopicNamer("p.")
    assert DESIGN_TOPICS <= {s.logical for s in TOPIC_SPECS}
    assert namer.events == "p.events"
    assert namer.spec("p.models").record == "ModelPublished"
    assert namer.spec("models") is namer.spec("p.models")
    with pytest.raises(AttributeError, match="no topic named"):
        _ = namer.evnts
    with pytest.raises(KeyError, match="not a streamops topic"):
        namer.spec("other.events")


def test_topic_configuration_fits_the_contract():
    by = {s.logical: s for s in TOPIC_SPECS}
    assert by["events"].partitions == 6 and by["predictions"].partitions == 6
    for name in ("models", "deployments"):
        assert by[name].config["cleanup.policy"] == "compact"
    assert int(by["models"].config["max.message.bytes"]) >= 16 * 1024 * 1024
    for spec in TOPIC_SPECS:
        if spec.config["cleanup.policy"] == "delete":
            assert "retention.ms" in spec.config
    assert {s.logical for s in TOPIC_SPECS if s.json_input} == {"events", "predictions", "actuals"}
    # Retrain outcomes answer retrain requests: kept as long, in the same single partition.
    outcomes = by["retrain_outcomes"]
    assert (outcomes.record, outcomes.partitions) == ("RetrainOutcome", 1)
    assert outcomes.config == by["retrain"].config


def test_producer_is_idempotent_with_acks_all():
    conf = KafkaConfig("127.0.0.1:9092", "t").producer()
    assert conf["enable.idempotence"] is True and conf["acks"] == "all"
    tx = KafkaConfig("127.0.0.1:9092", "t").producer(transactional_id="scorer-0")
    assert tx["transactional.id"] == "scorer-0"


def test_consumer_never_commits_on_its_own():
    conf = KafkaConfig("127.0.0.1:9092", "t").consumer("g", max_poll_interval_ms=6000)
    assert conf["enable.auto.commit"] is False and conf["enable.auto.offset.store"] is False
    assert conf["max.poll.interval.ms"] == 6000 and conf["group.id"] == "g"


def test_unknown_client_options_are_rejected():
    with pytest.raises(ConfigError, match="lingr_ms"):
        KafkaConfig("127.0.0.1:9092", "t").producer(lingr_ms=5)


def test_sasl_password_is_hidden_in_repr_but_passed_to_the_client():
    s = load_settings(
        CommonSettings,
        "scorer",
        {
            "STREAMOPS_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
            "STREAMOPS_KAFKA_SASL_USERNAME": "scorer",
            "STREAMOPS_KAFKA_SASL_PASSWORD": "s3cret",
        },
    )
    kc = KafkaConfig.from_settings(s, "scorer")
    assert "s3cret" not in repr(kc)
    assert kc.producer()["sasl.password"] == "s3cret"
    assert kc.sasl_password == Secret("s3cret")
