"""What the client raises: a record refused before sending, and deliveries that did not happen.

Registry errors come from the shared API client (services/common/api_client.py) and are
exported here under the same names: `ApiUnreachable`, `ApiUnauthorized`, `ApiNotFound`.
"""

from __future__ import annotations

import dataclasses

from services.common.api_client import ApiError, ApiNotFound, ApiUnauthorized, ApiUnreachable
from services.common.errors import PoisonMessage, StreamopsError

__all__ = [
    "ApiError",
    "ApiNotFound",
    "ApiUnauthorized",
    "ApiUnreachable",
    "DeliveryError",
    "InvalidRecord",
    "NotExternal",
    "Undelivered",
]


class InvalidRecord(StreamopsError, ValueError):
    """A record the services would refuse; nothing was sent. The message names the field.

    >>> from services.common.errors import Reason
    >>> str(InvalidRecord("Actual", PoisonMessage(Reason.NON_FINITE, "label is nan")))
    'Actual not sent: label is nan'
    """

    def __init__(self, record: str, refusal: PoisonMessage) -> None:
        super().__init__(f"{record} not sent: {refusal.detail}")
        self.record = record
        self.reason = refusal.reason
        self.detail = refusal.detail


class NotExternal(StreamopsError):
    """The deployment is served by the scorer, so nobody else reports its predictions."""


@dataclasses.dataclass(frozen=True)
class Undelivered:
    """One message that was not acknowledged.

    `outcome` is "failed" (not written: safe to send again) or "unknown" (may have been
    written, e.g. a request timed out in flight: check before sending again).
    """

    topic: str
    key: str
    outcome: str
    error: str


class DeliveryError(StreamopsError):
    """Messages sent since the last flush that the broker did not acknowledge."""

    def __init__(self, undelivered: list[Undelivered], acked: int, hint: str = "") -> None:
        self.undelivered = undelivered
        self.acked = acked
        failed = sum(u.outcome == "failed" for u in undelivered)
        unknown = len(undelivered) - failed
        first = undelivered[0]
        super().__init__(
            f"{len(undelivered)} of {len(undelivered) + acked} messages not delivered "
            f"({failed} failed: not written, send them again; {unknown} unknown: may be "
            f"written, check first); first: {first.topic} key {first.key!r}: {first.error}"
            + (f"; {hint}" if hint else "")
        )
