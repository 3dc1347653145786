"""Standard Webhooks signing: `webhook-id`, `webhook-timestamp`, `webhook-signature` headers.

The signature is `v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">` keyed with the bytes of a
`whsec_<base64>` secret. `Verifier` is the reference receiver-side check: it accepts any of several
secrets (key rotation) and any of several space-separated signatures, rejects stale or future
timestamps and replayed ids, and compares in constant time.

>>> secret = "whsec_" + base64.b64encode(b"k" * 32).decode()
>>> headers = sign(secret, "msg_1", 1_700_000_000, b'{"a":1}')
>>> Verifier([secret]).verify(headers, b'{"a":1}', now=1_700_000_010)
'msg_1'
"""

from __future__ import annotations

import base64
import binascii
import collections
import enum
import hashlib
import hmac
from collections.abc import Mapping, Sequence
from typing import Protocol

from services.common.errors import StreamopsError

SECRET_PREFIX = "whsec_"
SIGNATURE_VERSION = "v1"
ID_HEADER = "webhook-id"
TIMESTAMP_HEADER = "webhook-timestamp"
SIGNATURE_HEADER = "webhook-signature"


class VerificationFailure(enum.StrEnum):
    """Why a webhook was rejected; a bounded set usable as a metric label."""

    MISSING_HEADERS = "missing_headers"
    BAD_TIMESTAMP = "bad_timestamp"  # not an integer
    STALE_TIMESTAMP = "stale_timestamp"
    FUTURE_TIMESTAMP = "future_timestamp"
    NO_SIGNATURE = "no_signature"  # the header holds no v1 signature at all
    # A tampered body and a wrong secret are indistinguishable by design: no signature matches.
    SIGNATURE_MISMATCH = "signature_mismatch"
    REPLAYED_ID = "replayed_id"


class WebhookVerificationError(StreamopsError):
    """A webhook failed verification; `reason` says which check refused it."""

    def __init__(self, reason: VerificationFailure, detail: str = "") -> None:
        super().__init__(f"{reason.value}: {detail}" if detail else reason.value)
        self.reason = reason


def decode_secret(secret: str) -> bytes:
    """The HMAC key bytes of a `whsec_<base64>` secret; ValueError when malformed."""
    if not secret.startswith(SECRET_PREFIX):
        raise ValueError(f"webhook secret must start with {SECRET_PREFIX!r}")
    try:
        key = base64.b64decode(secret[len(SECRET_PREFIX) :], validate=True)
    except binascii.Error as exc:
        raise ValueError("webhook secret is not valid base64 after the whsec_ prefix") from exc
    if len(key) < 16:
        # Shorter keys make brute force of the HMAC realistic.
        raise ValueError("webhook secret must decode to at least 16 bytes")
    return key


def signature(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The `v1,<base64>` signature of one message under one secret."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(decode_secret(secret), signed, hashlib.sha256).digest()
    return f"{SIGNATURE_VERSION},{base64.b64encode(digest).decode()}"


def sign(secret: str | Sequence[str], msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The three Standard Webhooks headers; several secrets give several signatures (rotation)."""
    secrets = [secret] if isinstance(secret, str) else list(secret)
    if not secrets:
        raise ValueError("at least one secret is needed to sign")
    return {
        ID_HEADER: msg_id,
        TIMESTAMP_HEADER: str(int(timestamp)),
        SIGNATURE_HEADER: " ".join(signature(s, msg_id, int(timestamp), body) for s in secrets),
    }


class SeenIds(Protocol):
    """Remembers message ids already accepted, so a replay is refused."""

    def add(self, msg_id: str, now: float) -> bool:
        """Record `msg_id`; False when it was already there."""
        ...


class BoundedSeenIds:
    """An in-memory `SeenIds` holding at most `max_entries` ids, each for at most `ttl_s`.

    Ids older than the timestamp tolerance need not be kept: their timestamp check fails anyway.
    """

    def __init__(self, max_entries: int = 100_000, ttl_s: float = 600.0) -> None:
        self._max = max_entries
        self._ttl = ttl_s
        self._seen: collections.OrderedDict[str, float] = collections.OrderedDict()

    def add(self, msg_id: str, now: float) -> bool:
        """Record `msg_id`; False when it was already there."""
        while self._seen and (
            len(self._seen) >= self._max or next(iter(self._seen.values())) < now - self._ttl
        ):
            self._seen.popitem(last=False)
        if msg_id in self._seen:
            return False
        self._seen[msg_id] = now
        return True

    def __len__(self) -> int:
        return len(self._seen)


class Verifier:
    """Reference receiver-side verification of Standard Webhooks signatures."""

    def __init__(
        self,
        secrets: Sequence[str],
        tolerance_s: int = 300,
        seen_ids: SeenIds | None = None,
    ) -> None:
        if not secrets:
            raise ValueError("a verifier needs at least one secret")
        self._keys = [decode_secret(s) for s in secrets]
        self._tolerance = tolerance_s
        self._seen = seen_ids if seen_ids is not None else BoundedSeenIds(ttl_s=2 * tolerance_s)

    def __repr__(self) -> str:
        return f"Verifier(secrets=<{len(self._keys)} hidden>, tolerance_s={self._tolerance})"

    def verify(self, headers: Mapping[str, str], body: bytes, now: float) -> str:
        """Check one delivery and return its webhook id, or raise WebhookVerificationError."""
        lower = {k.lower(): v for k, v in headers.items()}
        msg_id = lower.get(ID_HEADER, "")
        raw_ts = lower.get(TIMESTAMP_HEADER, "")
        raw_sig = lower.get(SIGNATURE_HEADER, "")
        if not (msg_id and raw_ts and raw_sig):
            missing = [
                h
                for h, v in (
                    (ID_HEADER, msg_id),
                    (TIMESTAMP_HEADER, raw_ts),
                    (SIGNATURE_HEADER, raw_sig),
                )
                if not v
            ]
            raise WebhookVerificationError(VerificationFailure.MISSING_HEADERS, ", ".join(missing))
        try:
            timestamp = int(raw_ts)
        except ValueError:
            raise WebhookVerificationError(VerificationFailure.BAD_TIMESTAMP, raw_ts) from None
        if timestamp < now - self._tolerance:
            raise WebhookVerificationError(VerificationFailure.STALE_TIMESTAMP, raw_ts)
        if timestamp > now + self._tolerance:
            raise WebhookVerificationError(VerificationFailure.FUTURE_TIMESTAMP, raw_ts)
        candidates = _v1_signatures(raw_sig)
        if not candidates:
            raise WebhookVerificationError(VerificationFailure.NO_SIGNATURE)
        signed = f"{msg_id}.{timestamp}.".encode() + body
        expected = [hmac.new(k, signed, hashlib.sha256).digest() for k in self._keys]
        # Compare every pair without early exit so timing does not reveal which one matched.
        matched = False
        for got in candidates:
            for want in expected:
                matched |= hmac.compare_digest(got, want)
        if not matched:
            raise WebhookVerificationError(VerificationFailure.SIGNATURE_MISMATCH)
        # Only an authentic message may occupy the replay store, or forgeries could fill it.
        if not self._seen.add(msg_id, now):
            raise WebhookVerificationError(VerificationFailure.REPLAYED_ID, msg_id)
        return msg_id


def _v1_signatures(header: str) -> list[bytes]:
    """The decoded digests of every `v1,` entry in a signature header; others are ignored."""
    out = []
    for part in header.split():
        version, _, value = part.partition(",")
        if version != SIGNATURE_VERSION or not value:
            continue
        try:
            out.append(base64.b64decode(value, validate=True))
        except binascii.Error:
            continue
    return out
