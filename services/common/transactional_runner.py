"""Exactly-once processing: outputs and input offsets commit in one Kafka transaction.

Each batch runs inside a transaction: outputs (and dead letters) are produced transactionally,
the consumed offsets are sent to the same transaction with the consumer's group metadata
(so a zombie from an older generation is fenced), and the transaction commits. On an abortable
error the transaction is aborted and the consumer rewound to the first offset of the batch, so
the batch is processed again from scratch; a fenced or fatal producer ends the process
(the supervisor restarts it with the same transactional id, which fences any zombie), and so
does a transaction still blocked `STUCK_AFTER_TIMEOUT_S` past the transaction timeout (a
watchdog: some transactional calls ignore their timeouts once the broker was lost).
Downstream readers use `isolation.level=read_committed`.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from confluent_kafka import KafkaException, Message, TopicPartition

from services.common.errors import FatalError
from services.common.runner import Runner, next_offsets
from services.common.watchdog import Watchdog

log = logging.getLogger(__name__)

# By then the coordinator has aborted the transaction itself: exiting loses nothing more.
STUCK_AFTER_TIMEOUT_S = 15.0


class TransactionalRunner(Runner):
    """A Runner whose batches are Kafka transactions (the producer has a transactional.id)."""

    init_timeout_s: float = 30.0
    max_commit_attempts: int = 5

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.watchdog = Watchdog(self.config.transaction_timeout_s + STUCK_AFTER_TIMEOUT_S)

    def run(self, stop: threading.Event) -> None:
        """Initialise transactions (fencing older instances), then loop like the base runner."""
        try:
            self.producer.init_transactions(self.init_timeout_s)
        except KafkaException as exc:
            raise FatalError(f"could not initialise transactions: {exc.args[0]}") from None
        super().run(stop)

    def process(self, messages: list[Message]) -> None:
        """One batch, one transaction; abort and rewind on abortable errors."""
        self.producer.begin_transaction()
        positions: dict[tuple[str, int], tuple[int, int]] = {}
        try:
            positions = self.work(messages)
            # Only the transaction's own calls are watched: handling is bounded elsewhere (R5).
            with self.watchdog.guard("committing a transaction"):
                self.finish(positions)
        except KafkaException as exc:
            err = exc.args[0]
            if err.txn_requires_abort():
                self._abort_and_rewind(positions or _positions_of(messages), str(err))
                return
            raise FatalError(f"transaction failed ({err}); exiting to be restarted") from None
        self.batches += 1
        self.metrics.batch_size.labels(self.config.service).observe(len(messages))

    def finish(self, positions: dict[tuple[str, int], tuple[int, int]]) -> None:
        """Send the offsets into the transaction and commit it."""
        if positions:
            self.producer.send_offsets_to_transaction(
                next_offsets(positions), self.consumer.consumer_group_metadata()
            )
        for attempt in range(1, self.max_commit_attempts + 1):
            try:
                self.producer.commit_transaction()
                self._count_delivered()
                return
            except KafkaException as exc:
                err = exc.args[0]
                if err.retriable() and attempt < self.max_commit_attempts:
                    log.warning("commit_transaction retriable error (%s), retrying", err)
                    continue
                raise

    def _abort_and_rewind(
        self, positions: dict[tuple[str, int], tuple[int, int]], why: str
    ) -> None:
        self.metrics.errors.labels(self.config.service, "transaction_abort").inc()
        self._unreported.clear()  # aborted outputs are never read
        log.warning("aborting transaction (%s); rewinding %d partitions", why, len(positions))
        try:
            with self.watchdog.guard("aborting a transaction"):
                self.producer.abort_transaction()
        except KafkaException as exc:
            raise FatalError(f"abort_transaction failed: {exc.args[0]}") from None
        for (topic, partition), (first, _last) in positions.items():
            try:
                self.consumer.seek(TopicPartition(topic, partition, first))
            except KafkaException as exc:  # partition revoked meanwhile: its new owner replays
                log.info("rewind of %s[%d] skipped: %s", topic, partition, exc)

    def _shutdown(self) -> None:
        # A transaction is only ever open inside process(); nothing uncommitted remains here.
        self.consumer.close()
        log.info("%s: stopped after %d transactions", self.config.service, self.batches)


def _positions_of(messages: list[Message]) -> dict[tuple[str, int], tuple[int, int]]:
    positions: dict[tuple[str, int], tuple[int, int]] = {}
    for m in messages:
        if m.error() is None:
            key = (m.topic(), m.partition())
            first = positions.get(key, (m.offset(), m.offset()))[0]
            positions[key] = (first, m.offset())
    return positions
