"""Ed25519 signatures over canonical model bytes, with key ids and files on disk.

A key id is the first 16 hex characters of sha256 of the raw 32-byte public key, so any holder of
the public key can compute it. The private key is written as PKCS8 PEM with mode 0600 and is only
ever handled wrapped in `SigningKey`, whose repr never shows key material. This module deals in
bytes only: what is signed is the serde's canonical encoding of the record content.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Mapping
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from services.common.errors import ConfigError, PoisonMessage, Reason

SIGNATURE_BYTES = 64


def key_id_of(public_key: Ed25519PublicKey) -> str:
    """First 16 hex characters of sha256 of the raw public key."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


class SigningKey:
    """A private Ed25519 key and its key id; printing it never reveals the key."""

    __slots__ = ("_key", "key_id")

    def __init__(self, key: Ed25519PrivateKey) -> None:
        self._key = key
        self.key_id = key_id_of(key.public_key())

    def __repr__(self) -> str:
        return f"SigningKey(key_id={self.key_id!r}, private=<redacted>)"

    __str__ = __repr__

    def public_key(self) -> Ed25519PublicKey:
        """The matching public key."""
        return self._key.public_key()

    def sign(self, payload: bytes) -> bytes:
        """The 64-byte signature of `payload`."""
        return self._key.sign(payload)


def generate_keypair(directory: str | os.PathLike[str]) -> str:
    """Create `<key_id>.key` (PKCS8 PEM, mode 0600) and `<key_id>.pub` (PEM); returns key_id."""
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    key = Ed25519PrivateKey.generate()
    key_id = key_id_of(key.public_key())
    private_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    # Create with 0600 from the start: a chmod afterwards leaves a window where others can read.
    fd = os.open(folder / f"{key_id}.key", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(private_pem)
    (folder / f"{key_id}.pub").write_bytes(public_pem)
    return key_id


def ensure_keypair(directory: str | os.PathLike[str]) -> tuple[SigningKey, bool]:
    """(the one private key in `directory`, made now): a pair is generated when there is none;
    ConfigError when there are several (which one signs would be a guess)."""
    folder = Path(directory)
    keys = sorted(folder.glob("*.key")) if folder.is_dir() else []
    if len(keys) > 1:
        names = ", ".join(p.name for p in keys)
        raise ConfigError(f"several private keys in {folder} ({names}); keep exactly one")
    if keys:
        return load_private_key(keys[0]), False
    key_id = generate_keypair(folder)
    return load_private_key(folder / f"{key_id}.key"), True


def load_private_key(path: str | os.PathLike[str]) -> SigningKey:
    """Read a PKCS8 PEM Ed25519 private key; ConfigError when unreadable or not Ed25519."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read signing key {str(path)!r}: {exc.strerror}") from None
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError):
        raise ConfigError(f"{path}: not an unencrypted PKCS8 PEM private key") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigError(f"{path}: not an Ed25519 key")
    return SigningKey(key)


def _load_public_key(path: Path) -> Ed25519PublicKey:
    data = path.read_bytes()
    try:
        if len(data) == 32:
            return Ed25519PublicKey.from_public_bytes(data)
        key = serialization.load_pem_public_key(data)
    except ValueError:
        raise ConfigError(f"{path}: not an Ed25519 public key (PEM or 32 raw bytes)") from None
    if not isinstance(key, Ed25519PublicKey):
        raise ConfigError(f"{path}: not an Ed25519 public key")
    return key


def required_public_keys(
    directory: str | os.PathLike[str], missing: str
) -> dict[str, Ed25519PublicKey]:
    """The `*.pub` keys of `directory`; ConfigError(`missing`) when it has none (or is absent)."""
    folder = Path(directory)
    keys = load_public_keys(folder) if folder.is_dir() else {}
    if not keys:
        raise ConfigError(missing)
    return keys


def load_public_keys(
    source: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
) -> dict[str, Ed25519PublicKey]:
    """Trusted public keys by key id, from a directory of `*.pub` files or a list of paths."""
    if isinstance(source, str | os.PathLike):
        folder = Path(source)
        if not folder.is_dir():
            raise ConfigError(f"public key directory {str(folder)!r} does not exist")
        paths = sorted(folder.glob("*.pub"))
    else:
        paths = [Path(p) for p in source]
    keys = {}
    for path in paths:
        try:
            key = _load_public_key(path)
        except OSError as exc:
            raise ConfigError(f"cannot read public key {str(path)!r}: {exc.strerror}") from None
        keys[key_id_of(key)] = key
    return keys


def sign(private_key: SigningKey, payload: bytes) -> bytes:
    """The Ed25519 signature of `payload`."""
    return private_key.sign(payload)


def verify(
    public_keys: Mapping[str, Ed25519PublicKey],
    key_id: str | None,
    payload: bytes,
    signature: bytes | None,
) -> None:
    """Return when `signature` is `key_id`'s over `payload`; else PoisonMessage(BAD_SIGNATURE)."""
    if not signature:
        raise PoisonMessage(Reason.BAD_SIGNATURE, "missing signature")
    key = public_keys.get(key_id or "")
    if key is None:
        raise PoisonMessage(Reason.BAD_SIGNATURE, f"unknown key id {str(key_id)[:32]!r}")
    if len(signature) != SIGNATURE_BYTES:
        raise PoisonMessage(
            Reason.BAD_SIGNATURE, f"signature is {len(signature)} bytes, not {SIGNATURE_BYTES}"
        )
    try:
        key.verify(signature, payload)
    except InvalidSignature:
        raise PoisonMessage(
            Reason.BAD_SIGNATURE, f"signature does not match the content (key {key_id})"
        ) from None
