"""The alerting service's client (aiokafka, under faust) can read what our producers write."""

from __future__ import annotations

import pytest

from services.common.kafka_config import KafkaConfig
from services.common.settings import CommonSettings

pytestmark = pytest.mark.unit


def test_aiokafka_decodes_the_compression_our_producers_use():
    from aiokafka import codec

    used = KafkaConfig.from_settings(
        CommonSettings(kafka_security_protocol="PLAINTEXT"), "t"
    ).producer()["compression.type"]
    assert used == "lz4"
    # Without cramjam, an lz4 batch on `breaches` or `deployments` crashes the alerting worker.
    assert codec.has_lz4(), "install cramjam (a dependency in pyproject.toml)"
    assert codec.lz4_decode(codec.lz4_encode(b"breach" * 100)) == b"breach" * 100
