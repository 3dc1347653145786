"""The drift service's settings (`STREAMOPS_DRIFT_*`, flags), defined once."""

from __future__ import annotations

import dataclasses
from typing import ClassVar

from services.common.settings import CommonSettings

DETECTORS = ("adwin", "page_hinkley", "ddm")


@dataclasses.dataclass(frozen=True)
class DriftSettings(CommonSettings):
    """How the drift service windows, batches, joins labels and stores its state."""

    service: ClassVar[str] = "drift"

    group_id: str = "streamops-drift"
    instance_id: str = ""
    # Fallback window size; a Deployment's own window_seconds wins when it sets one.
    window_seconds: int = 60
    # 0 = tumbling windows by event time; N = windows of N events (replays and tests).
    window_count: int = 0
    allowed_lateness_s: int = 10
    # A deployment that sent nothing (no event, prediction or actual) for this long has its
    # open windows closed and reported (services/drift/idle.py): a count window with the
    # events it has, a time window once the wall clock is also this far past its end and the
    # allowed lateness. Otherwise the last windows of a stream that stops are never reported.
    # A minute, the default window: silence that long is a stopped stream, not a pause
    # (broker pauses and a lost rejoin, R17, last 10-30 s); 0 = never.
    idle_close_s: int = 60
    # Events, predictions and actuals timed more than this beyond the wall clock are
    # dead-lettered (future_event_time): one would move the watermark past every later event,
    # which would all be late. Producers' clocks may run this far ahead.
    max_future_skew_s: int = 300
    join_ttl_s: int = 86_400
    # Up to this many messages per micro-batch. A batch costs two Redis round trips (its join
    # read and its transaction) whatever its size, so when the loop is behind (Redis slowed by
    # its append-only rewrite, the cores full) larger batches catch up sooner: in scratch runs
    # on the live stream at 50,000 events/s with a rewrite in each feed, 0.1-0.2 s behind the
    # scorers at 5,000 against 0.2-1.0 s at 2,000 (docs/performance.md, 2026-12-06).
    batch_size: int = 5000
    max_wait_ms: int = 100
    # Larger fetches (librdkafka's fetch.min.bytes / fetch.wait.max.ms): the broker answers
    # when this many bytes are ready or the wait is over. Drift is not on the latency path (a
    # window is seconds to minutes), and fewer, fuller fetches cost it and the broker less CPU
    # than an answer for every few new messages (docs/performance.md, 2026-11-29 afternoon).
    fetch_min_bytes: int = 262_144
    fetch_wait_max_ms: int = 50
    # 0 = each statistic's own minimum number of observations before it reports a value.
    min_window_count: int = 0
    # Error-stream detector for classification (0/1 errors); regression always uses adwin.
    detector: str = "ddm"
    history_windows: int = 1000  # closed-window summaries kept in Redis per deployment
    # Drift processes sharing this group's stream, each started with its own shard (0..N-1):
    # each reads partitions p % shards == shard and process 0 merges the windows
    # (services/drift/merge.py). Changing the number of shards starts the windows afresh.
    shards: int = 1
    shard: int = 0
    replay_timeout_s: float = 60.0
    # The trainer's public keys: a model's baseline is used only when its record verifies.
    trusted_keys_dir: str = ""  # default: <var_dir>/keys
    metrics_port: int = 9103

    def __post_init__(self) -> None:
        if self.detector not in DETECTORS:
            raise ValueError(f"detector must be one of {DETECTORS}, not {self.detector!r}")
        if self.window_seconds < 1 or self.window_count < 0 or self.allowed_lateness_s < 0:
            raise ValueError("window_seconds >= 1, window_count >= 0, allowed_lateness_s >= 0")
        if self.max_future_skew_s < 0 or self.idle_close_s < 0:
            raise ValueError("max_future_skew_s >= 0 and idle_close_s >= 0")
        if self.batch_size < 1 or self.max_wait_ms < 0 or self.join_ttl_s < 1:
            raise ValueError("batch_size >= 1, max_wait_ms >= 0 and join_ttl_s >= 1")
        if self.fetch_min_bytes < 1 or self.fetch_wait_max_ms < 0:
            raise ValueError("fetch_min_bytes >= 1 and fetch_wait_max_ms >= 0")
        if self.shards < 1 or not 0 <= self.shard < self.shards:
            raise ValueError(f"shards >= 1, 0 <= shard < shards; not {self.shard} of {self.shards}")

    @property
    def group_namespace(self) -> str:
        """The Redis key prefix every key of this group starts with (all its processes)."""
        return f"streamops:drift:{self.group_id}"

    @property
    def namespace(self) -> str:
        """The Redis key prefix of this process's state: the group's, or its shard's."""
        group = self.group_namespace
        return group if self.shards == 1 else f"{group}:shard-{self.shard}-of-{self.shards}"

    @property
    def shared_namespace(self) -> str:
        """The Redis key prefix a sharded group's processes share (parts, marks, summaries)."""
        return f"{self.group_namespace}:of-{self.shards}"

    @property
    def closed_namespace(self) -> str:
        """Where the group's closed-window summaries are kept: the process's own namespace, or
        the shared one where process 0 writes the merged windows."""
        return self.namespace if self.shards == 1 else self.shared_namespace
