"""R14: the reference verifier rejects tampering, wrong secrets, bad timestamps and replays."""

import base64
import hashlib
import hmac

import pytest

from services.alerting.webhook_signing import (
    BoundedSeenIds,
    VerificationFailure,
    Verifier,
    WebhookVerificationError,
    decode_secret,
    sign,
)

pytestmark = pytest.mark.unit

OLD = "whsec_" + base64.b64encode(b"o" * 32).decode()
NEW = "whsec_" + base64.b64encode(b"n" * 32).decode()
OTHER = "whsec_" + base64.b64encode(b"x" * 32).decode()
BODY = b'{"version":"4","status":"firing"}'
T0 = 1_700_000_000


def test_signature_matches_the_standard_webhooks_construction() -> None:
    headers = sign(OLD, "msg_abc", T0, BODY)
    digest = hmac.new(b"o" * 32, b"msg_abc.1700000000." + BODY, hashlib.sha256).digest()
    assert headers == {
        "webhook-id": "msg_abc",
        "webhook-timestamp": "1700000000",
        "webhook-signature": "v1," + base64.b64encode(digest).decode(),
    }


def test_valid_delivery_is_accepted_and_header_case_does_not_matter() -> None:
    headers = {k.title(): v for k, v in sign(OLD, "msg_1", T0, BODY).items()}
    assert Verifier([OLD]).verify(headers, BODY, now=T0 + 5) == "msg_1"


def _reject(verifier: Verifier, headers: dict[str, str], body: bytes, now: float) -> str:
    with pytest.raises(WebhookVerificationError) as info:
        verifier.verify(headers, body, now)
    return info.value.reason


@pytest.mark.parametrize(
    ("case", "headers", "body", "now", "reason"),
    [
        ("tampered body", sign(OLD, "m1", T0, BODY), BODY + b" ", T0, "signature_mismatch"),
        ("wrong secret", sign(OTHER, "m1", T0, BODY), BODY, T0, "signature_mismatch"),
        ("stale", sign(OLD, "m1", T0, BODY), BODY, T0 + 301, "stale_timestamp"),
        ("future", sign(OLD, "m1", T0, BODY), BODY, T0 - 301, "future_timestamp"),
        ("no id", {**sign(OLD, "m1", T0, BODY), "webhook-id": ""}, BODY, T0, "missing_headers"),
        (
            "no signature header",
            {"webhook-id": "m1", "webhook-timestamp": str(T0)},
            BODY,
            T0,
            "missing_headers",
        ),
        (
            "timestamp not a number",
            {**sign(OLD, "m1", T0, BODY), "webhook-timestamp": "soon"},
            BODY,
            T0,
            "bad_timestamp",
        ),
        (
            "only v2 signatures",
            {**sign(OLD, "m1", T0, BODY), "webhook-signature": "v2,AAAA"},
            BODY,
            T0,
            "no_signature",
        ),
        (
            "id swapped after signing",
            {**sign(OLD, "m1", T0, BODY), "webhook-id": "m2"},
            BODY,
            T0,
            "signature_mismatch",
        ),
        (
            "timestamp moved after signing",
            {**sign(OLD, "m1", T0, BODY), "webhook-timestamp": str(T0 + 1)},
            BODY,
            T0,
            "signature_mismatch",
        ),
    ],
)
def test_rejections(case: str, headers: dict, body: bytes, now: float, reason: str) -> None:
    assert _reject(Verifier([OLD]), headers, body, now) == VerificationFailure(reason), case


def test_tolerance_edges_are_inclusive() -> None:
    verifier = Verifier([OLD], tolerance_s=300)
    assert verifier.verify(sign(OLD, "a", T0, BODY), BODY, T0 + 300) == "a"
    assert verifier.verify(sign(OLD, "b", T0, BODY), BODY, T0 - 300) == "b"


def test_replayed_id_is_rejected_even_with_a_fresh_valid_signature() -> None:
    verifier = Verifier([OLD])
    verifier.verify(sign(OLD, "m1", T0, BODY), BODY, T0)
    assert _reject(verifier, sign(OLD, "m1", T0, BODY), BODY, T0 + 1) == "replayed_id"
    assert _reject(verifier, sign(OLD, "m1", T0 + 10, BODY), BODY, T0 + 10) == "replayed_id"


def test_forged_message_does_not_burn_the_id() -> None:
    verifier = Verifier([OLD])
    assert _reject(verifier, sign(OTHER, "m1", T0, BODY), BODY, T0) == "signature_mismatch"
    assert verifier.verify(sign(OLD, "m1", T0, BODY), BODY, T0) == "m1"


def test_rotation_old_and_new_secrets_both_verify_during_overlap() -> None:
    verifier = Verifier([NEW, OLD])
    assert verifier.verify(sign(OLD, "a", T0, BODY), BODY, T0) == "a"
    assert verifier.verify(sign(NEW, "b", T0, BODY), BODY, T0) == "b"
    # A sender mid-rotation signs with both; a receiver that knows only one still accepts.
    both = sign([NEW, OLD], "c", T0, BODY)
    assert len(both["webhook-signature"].split()) == 2
    assert Verifier([OLD]).verify(both, BODY, T0) == "c"
    assert Verifier([NEW]).verify(both, BODY, T0) == "c"
    assert _reject(Verifier([OTHER]), both, BODY, T0) == "signature_mismatch"


def test_after_rotation_the_retired_secret_is_refused() -> None:
    assert _reject(Verifier([NEW]), sign(OLD, "a", T0, BODY), BODY, T0) == "signature_mismatch"


def test_compare_is_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    Verifier([NEW, OLD]).verify(sign(OLD, "a", T0, BODY), BODY, T0)
    assert len(calls) == 2  # every secret compared, through compare_digest, no early exit


@pytest.mark.parametrize(
    "bad",
    ["secret", "whsec_", "whsec_!!notbase64!!", "whsec_" + base64.b64encode(b"short").decode()],
)
def test_malformed_secrets_are_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        decode_secret(bad)


def test_verifier_repr_hides_secrets() -> None:
    assert "whsec" not in repr(Verifier([OLD])) and base64.b64encode(
        b"o" * 32
    ).decode() not in repr(Verifier([OLD]))


def test_seen_ids_are_bounded_in_count_and_age() -> None:
    seen = BoundedSeenIds(max_entries=3, ttl_s=100)
    for i in range(10):
        assert seen.add(f"id{i}", now=0)
    assert len(seen) == 3
    assert not seen.add("id9", now=1)
    assert seen.add("id0", now=1)  # evicted by size, so no longer remembered
    assert seen.add("late", now=500)
    assert len(seen) == 1  # everything older than the ttl was dropped
