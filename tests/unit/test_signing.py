"""Ed25519 model signing: round trip, every rejection, key file mode and redaction."""

from __future__ import annotations

import stat

import pytest

from services.common.errors import ConfigError, PoisonMessage, Reason
from services.common.signing import (
    ensure_keypair,
    generate_keypair,
    load_private_key,
    load_public_keys,
    sign,
    verify,
)

pytestmark = pytest.mark.unit

PAYLOAD = b"canonical model content \x00\x01"


@pytest.fixture()
def keys(tmp_path):
    key_id = generate_keypair(tmp_path)
    return key_id, load_private_key(tmp_path / f"{key_id}.key"), load_public_keys(tmp_path)


def rejected(public_keys, key_id, payload, signature) -> PoisonMessage:
    with pytest.raises(PoisonMessage) as info:
        verify(public_keys, key_id, payload, signature)
    assert info.value.reason is Reason.BAD_SIGNATURE
    return info.value


def test_round_trip(keys):
    key_id, private, public = keys
    assert len(key_id) == 16 and private.key_id == key_id and list(public) == [key_id]
    verify(public, key_id, PAYLOAD, sign(private, PAYLOAD))


def test_tampered_payload_rejected(keys):
    key_id, private, public = keys
    signature = sign(private, PAYLOAD)
    for i in (0, len(PAYLOAD) // 2, len(PAYLOAD) - 1):
        tampered = bytearray(PAYLOAD)
        tampered[i] ^= 0x01
        assert "does not match" in str(rejected(public, key_id, bytes(tampered), signature))


def test_tampered_signature_rejected(keys):
    key_id, private, public = keys
    signature = bytearray(sign(private, PAYLOAD))
    signature[10] ^= 0x80
    rejected(public, key_id, PAYLOAD, bytes(signature))
    assert "bytes" in str(rejected(public, key_id, PAYLOAD, bytes(signature[:-1])))


def test_wrong_key_rejected(tmp_path, keys):
    key_id, _, public = keys
    other_id = generate_keypair(tmp_path / "other")
    other = load_private_key(tmp_path / "other" / f"{other_id}.key")
    # Signed by a key we do not trust, but claiming our key id.
    rejected(public, key_id, PAYLOAD, sign(other, PAYLOAD))
    # Signed by a key we do not trust, under its own id.
    assert "unknown key id" in str(rejected(public, other_id, PAYLOAD, sign(other, PAYLOAD)))


@pytest.mark.parametrize("key_id", ["0123456789abcdef", "", None])
def test_unknown_key_id_rejected(keys, key_id):
    _, private, public = keys
    assert "unknown key id" in str(rejected(public, key_id, PAYLOAD, sign(private, PAYLOAD)))


@pytest.mark.parametrize("signature", [b"", None])
def test_missing_signature_rejected(keys, signature):
    key_id, _, public = keys
    assert "missing signature" in str(rejected(public, key_id, PAYLOAD, signature))


def test_private_key_file_is_0600_and_never_printed(tmp_path, keys):
    key_id, private, _ = keys
    mode = stat.S_IMODE((tmp_path / f"{key_id}.key").stat().st_mode)
    assert mode == 0o600
    pem = (tmp_path / f"{key_id}.key").read_text()
    body = "".join(pem.splitlines()[1:-1])
    for text in (repr(private), str(private), f"{private}", repr([private])):
        assert "redacted" in text and key_id in text
        assert body not in text and "PRIVATE" not in text


def test_load_public_keys_from_paths_and_rotation(tmp_path):
    first = generate_keypair(tmp_path)
    second = generate_keypair(tmp_path)
    keys = load_public_keys([tmp_path / f"{first}.pub", tmp_path / f"{second}.pub"])
    assert set(keys) == {first, second}
    for key_id in (first, second):
        private = load_private_key(tmp_path / f"{key_id}.key")
        verify(keys, key_id, PAYLOAD, sign(private, PAYLOAD))


def test_bad_key_files_are_config_errors(tmp_path):
    (tmp_path / "x.key").write_text("not a key")
    with pytest.raises(ConfigError, match="PKCS8"):
        load_private_key(tmp_path / "x.key")
    with pytest.raises(ConfigError, match="cannot read"):
        load_private_key(tmp_path / "absent.key")
    with pytest.raises(ConfigError, match="does not exist"):
        load_public_keys(tmp_path / "absent")
    (tmp_path / "y.pub").write_text("garbage")
    with pytest.raises(ConfigError, match="public key"):
        load_public_keys(tmp_path)


def test_ensure_keypair_makes_one_pair_then_keeps_it_and_refuses_two(tmp_path):
    folder = tmp_path / "registry"
    made, created = ensure_keypair(folder)
    again, created_again = ensure_keypair(folder)
    assert (created, created_again) == (True, False) and again.key_id == made.key_id
    assert stat.S_IMODE((folder / f"{made.key_id}.key").stat().st_mode) == 0o600
    assert list(load_public_keys(folder)) == [made.key_id]
    generate_keypair(folder)
    with pytest.raises(ConfigError, match="several private keys .* keep exactly one"):
        ensure_keypair(folder)
