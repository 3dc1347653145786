"""Settings: precedence, unknown keys, types, secrets."""

from __future__ import annotations

import argparse
import dataclasses

import pytest

from services.common.errors import ConfigError
from services.common.settings import (
    CommonSettings,
    Secret,
    add_settings_arguments,
    load_settings,
    overrides_from_args,
)

pytestmark = pytest.mark.unit


@dataclasses.dataclass(frozen=True)
class ScorerLike(CommonSettings):
    batch_size: int = 500
    exactly_once: bool = False


def test_defaults_then_env_then_service_env_then_flags():
    env = {"STREAMOPS_BATCH_SIZE": "100", "STREAMOPS_SCORER_BATCH_SIZE": "200"}
    assert load_settings(ScorerLike, "scorer", {}).batch_size == 500
    assert load_settings(ScorerLike, "scorer", {"STREAMOPS_BATCH_SIZE": "100"}).batch_size == 100
    assert load_settings(ScorerLike, "scorer", env).batch_size == 200
    assert load_settings(ScorerLike, "scorer", env, {"batch_size": "300"}).batch_size == 300


def test_unknown_keys_are_rejected_with_the_key_named():
    with pytest.raises(ConfigError, match="STREAMOPS_BATCHSIZE"):
        load_settings(ScorerLike, "scorer", {"STREAMOPS_BATCHSIZE": "1"})
    with pytest.raises(ConfigError, match="STREAMOPS_SCORER_NOPE"):
        load_settings(ScorerLike, "scorer", {"STREAMOPS_SCORER_NOPE": "1"})
    with pytest.raises(ConfigError, match="nope"):
        load_settings(ScorerLike, "scorer", {}, {"nope": "1"})


def test_other_services_and_infra_keys_are_not_ours_to_reject():
    env = {"STREAMOPS_DRIFT_WINDOW": "60", "STREAMOPS_KAFKA_PORT": "9092", "OTHER": "x"}
    assert load_settings(ScorerLike, "scorer", env).batch_size == 500


def test_types_are_coerced_and_bad_values_explained():
    s = load_settings(ScorerLike, "scorer", {"STREAMOPS_SCORER_EXACTLY_ONCE": "yes"})
    assert s.exactly_once is True
    with pytest.raises(ConfigError, match="STREAMOPS_SCORER_BATCH_SIZE"):
        load_settings(ScorerLike, "scorer", {"STREAMOPS_SCORER_BATCH_SIZE": "many"})
    with pytest.raises(ConfigError, match="true/false"):
        load_settings(ScorerLike, "scorer", {"STREAMOPS_SCORER_EXACTLY_ONCE": "maybe"})


def test_secrets_never_print():
    s = load_settings(CommonSettings, "scorer", {"STREAMOPS_REDIS_PASSWORD": "hunter2"})
    assert s.redis_password.reveal() == "hunter2"
    for text in (repr(s), str(s), s.describe(), repr(s.redis_password), f"{s.redis_password}"):
        assert "hunter2" not in text
    assert Secret("a") == Secret("a") and Secret("a") != Secret("b")


def test_settings_are_frozen():
    s = load_settings(CommonSettings, "scorer", {})
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.kafka_bootstrap = "elsewhere"  # type: ignore[misc]


def test_flags_are_generated_from_fields_and_only_set_ones_override():
    parser = argparse.ArgumentParser()
    add_settings_arguments(parser, ScorerLike)
    args = parser.parse_args(["--batch-size", "42"])
    s = load_settings(
        ScorerLike,
        "scorer",
        {"STREAMOPS_TOPIC_PREFIX": "x."},
        overrides_from_args(args, ScorerLike),
    )
    assert (s.batch_size, s.topic_prefix) == (42, "x.")


def test_redis_password_falls_back_to_the_file_infra_wrote(tmp_path):
    (tmp_path / "redis").mkdir()
    (tmp_path / "redis" / "password").write_text("from-file\n")
    s = load_settings(CommonSettings, "scorer", {"STREAMOPS_VAR_DIR": str(tmp_path)})
    assert s.redis_secret().reveal() == "from-file"
    s2 = load_settings(
        CommonSettings,
        "scorer",
        {"STREAMOPS_VAR_DIR": str(tmp_path), "STREAMOPS_REDIS_PASSWORD": "env"},
    )
    assert s2.redis_secret().reveal() == "env"


def test_a_secret_setting_is_refused_as_a_flag_and_says_which_variable_to_set(capsys):
    from services.alerting.config import AlertingSettings

    parser = argparse.ArgumentParser()
    add_settings_arguments(parser, AlertingSettings)
    for flag, env in (
        ("--api-token", "STREAMOPS_ALERTING_API_TOKEN"),
        ("--redis-password", "STREAMOPS_REDIS_PASSWORD"),
    ):
        with pytest.raises(SystemExit) as info:
            parser.parse_args([flag, "s3cret-on-argv-0123"])
        assert info.value.code == 2
        err = capsys.readouterr().err
        assert f"{flag} would put a secret on the command line" in err and env in err
    assert "--api-token" not in parser.format_help()
    args = parser.parse_args(["--api-port", "1"])
    assert overrides_from_args(args, AlertingSettings)["api_token"] is None
