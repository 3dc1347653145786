"""The scorer's settings (`STREAMOPS_SCORER_*`, flags), defined once."""

from __future__ import annotations

import dataclasses
from typing import ClassVar

from services.common.settings import CommonSettings

GUARANTEES = ("at_least_once", "exactly_once")


@dataclasses.dataclass(frozen=True)
class ScorerSettings(CommonSettings):
    """How the scorer consumes, batches, delivers and trusts models."""

    service: ClassVar[str] = "scorer"

    group_id: str = "streamops-scorer"
    instance_id: str = ""  # stable per process slot: static membership and transactional id
    batch_size: int = 1000
    # Once a batch's first event is in, wait this long for more (0: score what has arrived).
    # At 5,000 events/s 1 ms makes batches ~3x as large (10 events, not 3.6) and the scorer's
    # CPU per event 24-30% smaller; p50 latency +0.8 ms there, +1.4 ms at 1,000/s
    # (docs/performance.md).
    max_wait_ms: int = 1
    # Predictions are flushed and their events' offsets committed at most this often; a crash
    # replays up to this much.
    commit_interval_ms: int = 100
    # How long the producer waits to fill a request. Predictions are not flushed per batch
    # (only once per commit interval), so this wait would be in every prediction's latency;
    # under load requests fill anyway while earlier ones are in flight.
    linger_ms: float = 0.0
    processing_guarantee: str = "at_least_once"
    # Exactly-once only: the producer's transaction.timeout.ms (librdkafka's default). A
    # transaction still blocked 15 s past it ends the process (services/common/watchdog.py).
    transaction_timeout_ms: int = 60_000
    max_poll_interval_ms: int = 300_000
    trusted_keys_dir: str = ""  # default: <var_dir>/keys
    replay_timeout_s: float = 60.0
    metrics_port: int = 9102
    # Before a model is served, one row is scored in a child process allowed this much address
    # space beyond what its imports map; a model needing more is refused (model_probe). A
    # credit model needs a few MB of it; the rest is headroom for larger legitimate models.
    probe_memory_mb: int = 1024
    probe_timeout_s: float = 10.0

    def __post_init__(self) -> None:
        if self.processing_guarantee not in GUARANTEES:
            raise ValueError(
                f"processing_guarantee must be one of {GUARANTEES}, "
                f"not {self.processing_guarantee!r}"
            )
        if (
            self.batch_size < 1
            or self.max_wait_ms < 0
            or self.commit_interval_ms < 0
            or self.linger_ms < 0
            or self.transaction_timeout_ms < 1000
        ):
            raise ValueError(
                "batch_size must be >= 1, max_wait_ms, commit_interval_ms and linger_ms >= 0, "
                "transaction_timeout_ms >= 1000"
            )
        if self.probe_memory_mb < 1 or self.probe_timeout_s <= 0:
            raise ValueError("probe_memory_mb must be >= 1 and probe_timeout_s > 0")
