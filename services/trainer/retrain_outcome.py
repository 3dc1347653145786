"""What became of a retrain request, as the `RetrainOutcome` record the trainer answers with.

>>> answer = Answer("rejected", "gate: roc_auc 0.80 vs champion 0.90: fails")
>>> out = outcome_message("p.retrain_outcomes", "credit", "r1", answer, attempts=1)
>>> _name, record = serde.decode(out.value, expected="RetrainOutcome")
>>> (out.key, record["outcome"], record["request_id"], record["model_id"])
('credit', 'rejected', 'r1', None)
"""

from __future__ import annotations

import dataclasses
import time
import uuid

from services.common import serde
from services.common.messages import Outbound

OUTCOMES = ("published", "rejected", "refused", "failed")
MAX_DETAIL = 2000  # characters of detail kept, so an outcome stays far below its 64 KiB limit


@dataclasses.dataclass(frozen=True)
class Answer:
    """What one training came to: its outcome, the detail, and the model if published."""

    outcome: str
    detail: str
    model_id: str | None = None
    version: int | None = None

    def __post_init__(self) -> None:
        if self.outcome not in OUTCOMES:
            raise ValueError(f"unknown retrain outcome {self.outcome!r}")


def outcome_message(
    topic: str, deployment: str, request_id: str, answer: Answer, attempts: int
) -> Outbound:
    """The RetrainOutcome answering ``request_id``, keyed by its deployment."""
    record = {
        "outcome_id": uuid.uuid4().hex,
        "request_id": request_id,
        "deployment": deployment,
        "outcome": answer.outcome,
        "detail": answer.detail[:MAX_DETAIL],
        "model_id": answer.model_id,
        "version": answer.version,
        "attempts": attempts,
        "at": int(time.time() * 1000),
    }
    header = serde.fingerprint_header("RetrainOutcome")
    return Outbound(topic, deployment, serde.encode("RetrainOutcome", record), headers=(header,))


def error_text(exc: BaseException) -> str:
    """An exception as an outcome's detail: its type and message, bounded."""
    return f"{type(exc).__name__}: {exc}"[:MAX_DETAIL]
