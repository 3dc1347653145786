"""The error taxonomy: one root, retryable versus poison, and a bounded set of reasons.

The boundary that knows the protocol decides which one an exception is. Reasons are a closed
enum so they can be used as metric labels and dead-letter fields without unbounded cardinality.
"""

from __future__ import annotations

import enum


class Reason(enum.StrEnum):
    """Why a message or operation failed; a bounded set usable as a metric label."""

    NOT_AVRO = "not_avro"  # no single-object marker and not accepted JSON
    UNKNOWN_FINGERPRINT = "unknown_fingerprint"
    TRUNCATED = "truncated"
    TRAILING_BYTES = "trailing_bytes"
    OVERSIZE = "oversize"  # message or declared collection larger than the contract allows
    WRONG_TYPE = "wrong_type"  # decoded, but a field has the wrong type or shape
    NON_FINITE = "non_finite"  # NaN or Inf where the contract forbids it
    INVALID_JSON = "invalid_json"
    SCHEMA_MISMATCH = "schema_mismatch"  # features do not match the model signature
    UNKNOWN_DEPLOYMENT = "unknown_deployment"  # the event names no active deployment
    BAD_SIGNATURE = "bad_signature"
    UNSAFE_MODEL = "unsafe_model"
    HANDLER_FAILED = "handler_failed"  # the handler raised on this message too many times
    DECODE_FAILED = "decode_failed"  # the decoder raised something unexpected on this message
    OUT_OF_RANGE = "out_of_range"  # a finite number outside what its field can hold
    FUTURE_EVENT_TIME = "future_event_time"  # a time beyond now plus the allowed future skew
    TIMEOUT = "timeout"
    DELIVERY_FAILED = "delivery_failed"  # a webhook gave up: final refusal or attempts exhausted
    REWRITE = "rewrite"  # would change a record already applied (the audit trail is append-only)
    REPLAYED_REVISION = "replayed_revision"  # a Deployment revision at or below the current one
    REVISION_GAP = "revision_gap"  # a Deployment revision beyond the current one plus one
    UNKNOWN = "unknown"


class StreamopsError(Exception):
    """Root of every error streamops raises on purpose."""


class ConfigError(StreamopsError):
    """Settings are missing, unknown or invalid; the message says what to fix."""


class RetryableError(StreamopsError):
    """A transient failure (broker, network, Redis): try the same work again later."""


class PoisonMessage(StreamopsError):
    """This message can never be processed: dead-letter it and move on."""

    def __init__(self, reason: Reason, detail: str) -> None:
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason
        self.detail = detail


class FatalError(StreamopsError):
    """The process cannot continue (fenced producer, lost credentials): exit non-zero."""
