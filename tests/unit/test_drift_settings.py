"""The drift service's settings reach its stream consumer; bad values are refused at start."""

from __future__ import annotations

import pytest

from services.common.errors import ConfigError
from services.common.kafka_config import KafkaConfig
from services.common.settings import load_settings
from services.drift.app import consumer_config
from services.drift.config import DriftSettings

pytestmark = pytest.mark.unit

KAFKA = KafkaConfig("127.0.0.1:9092", "drift-test")


def test_the_stream_consumer_fetches_in_larger_answers_by_default():
    conf = consumer_config(DriftSettings(), KAFKA)
    assert conf["fetch.min.bytes"] == 262_144
    assert conf["fetch.wait.max.ms"] == 50
    assert conf["partition.assignment.strategy"] == "range"
    assert conf["enable.auto.commit"] is False  # still the shared consumer defaults
    assert "group.instance.id" not in conf


def test_fetch_settings_and_instance_id_come_from_the_environment():
    env = {
        "STREAMOPS_DRIFT_FETCH_MIN_BYTES": "1",
        "STREAMOPS_DRIFT_FETCH_WAIT_MAX_MS": "0",
        "STREAMOPS_DRIFT_INSTANCE_ID": "drift-a",
    }
    conf = consumer_config(load_settings(DriftSettings, "drift", env), KAFKA)
    assert (conf["fetch.min.bytes"], conf["fetch.wait.max.ms"]) == (1, 0)
    assert conf["group.instance.id"] == "drift-a"


@pytest.mark.parametrize(
    "env",
    [{"STREAMOPS_DRIFT_FETCH_MIN_BYTES": "0"}, {"STREAMOPS_DRIFT_FETCH_WAIT_MAX_MS": "-1"}],
)
def test_a_fetch_setting_out_of_range_is_refused_with_its_rule(env):
    with pytest.raises(ConfigError, match="fetch_min_bytes >= 1 and fetch_wait_max_ms >= 0"):
        load_settings(DriftSettings, "drift", env)
