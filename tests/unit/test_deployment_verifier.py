"""Deployment signatures: what is signed, every refusal, the hint logged once, the registry view."""

from __future__ import annotations

import doctest
import logging

import pytest

from services.common import deployment_verifier, serde, signing
from services.common.deployment_verifier import DeploymentVerifier, sign, signed_bytes
from services.common.errors import ConfigError, PoisonMessage, Reason
from services.common.settings import CommonSettings
from services.registry.view import RegistryView
from tests.registry_support import RedisStub

pytestmark = pytest.mark.unit

RECORD = {
    "name": "d",
    "revision": 3,
    "updated_at": 1,
    "updated_by": "ann",
    "reason": "r",
    "champion": {"model_name": "m", "model_id": "a" * 64, "version": 2},
    "challengers": [],
    "mode": "shadow",
    "humility": [],
    "thresholds": [],
    "policy": {"auto_approve": False, "retrain_after_windows": 3, "review_topic": None},
    "window_seconds": 60,
}


@pytest.fixture()
def keys(tmp_path):
    registry, _ = signing.ensure_keypair(tmp_path / "registry")
    model, _ = signing.ensure_keypair(tmp_path / "models")
    return registry, model, DeploymentVerifier.from_dir(tmp_path / "registry")


def refused(verify: DeploymentVerifier, record: dict) -> PoisonMessage:
    with pytest.raises(PoisonMessage) as info:
        verify(record)
    assert info.value.reason is Reason.BAD_SIGNATURE
    return info.value


def test_doctests():
    assert doctest.testmod(deployment_verifier).failed == 0


def test_a_signed_record_verifies_after_the_wire_and_comes_back_without_its_signature(keys):
    registry, _model, verify = keys
    signed = sign(RECORD, registry)
    assert signed["key_id"] == registry.key_id and len(signed["signature"]) == 64
    _name, decoded = serde.decode(serde.encode("Deployment", signed), expected="Deployment")
    content = verify(decoded)
    assert "key_id" not in content and "signature" not in content
    assert content["champion"] == RECORD["champion"] and content["revision"] == 3


def test_the_signature_covers_every_field_but_its_own(keys):
    registry, _model, verify = keys
    signed = sign(RECORD, registry)
    assert signed_bytes(signed) == signed_bytes(RECORD)  # key_id and signature are left out
    for change in (
        {"revision": 4},
        {"champion": {**RECORD["champion"], "model_id": "b" * 64}},
        {"mode": "ab"},
        {"external": True},
        {"window_seconds": 61},
    ):
        assert "does not match" in refused(verify, {**signed, **change}).detail, change
    resigned = sign({**signed, "revision": 4}, registry)  # an earlier signature is replaced
    assert verify(resigned)["revision"] == 4


def test_unsigned_foreign_key_and_model_key_records_are_refused(keys, tmp_path):
    _registry, model, verify = keys
    assert "missing signature" in refused(verify, RECORD).detail
    assert "missing signature" in refused(verify, {**RECORD, "signature": None}).detail
    by_model_key = sign(RECORD, model)  # a trainer's key may not sign deployments
    assert "unknown key id" in refused(verify, by_model_key).detail
    forged_id = {**by_model_key, "key_id": next(iter(verify.trusted))}
    assert "does not match" in refused(verify, forged_id).detail


def test_each_kind_of_refusal_is_explained_once_with_what_to_do(keys, caplog):
    _registry, model, verify = keys
    caplog.set_level(logging.ERROR, logger="services.common.deployment_verifier")
    for _ in range(3):
        refused(verify, {**RECORD, "revision": 5})
        refused(verify, sign(RECORD, model))
    said = [r.getMessage() for r in caplog.records]
    assert len(said) == 2, said
    assert "another process or a registry older than signed deployments" in said[0]
    assert model.key_id in said[1] and "copy its .pub" in said[1]
    assert verify.directory in said[1]


def test_no_registry_key_is_a_config_error_saying_what_to_do(tmp_path):
    for folder in (tmp_path / "missing", tmp_path):
        with pytest.raises(ConfigError, match="start the registry once .* `streamops infra up`"):
            DeploymentVerifier.from_dir(folder)


def test_the_keys_directory_defaults_under_var_and_can_be_set():
    assert CommonSettings(var_dir="/v").deployment_keys().as_posix() == "/v/keys/registry"
    assert CommonSettings(deployment_keys_dir="/k").deployment_keys().as_posix() == "/k"


def test_the_registry_view_keeps_a_revision_without_its_signature(keys):
    registry, _model, _verify = keys
    view = RegistryView(RedisStub(), "t.")  # type: ignore[arg-type]
    view.apply_deployment(sign(RECORD, registry))
    stored = view.r.hashes["t.registry:deployment:d"]["3"]  # type: ignore[attr-defined]
    assert b"signature" not in stored and b"key_id" not in stored
    view.apply_deployment(RECORD)  # the registry's own write, before it was signed: the same
    assert view.r.hashes["t.registry:deployment:d"]["3"] == stored  # type: ignore[attr-defined]
