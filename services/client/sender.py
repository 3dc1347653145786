"""Asynchronous producing with every delivery accounted for: `flush` raises what did not land.

Messages are produced at once (librdkafka batches them); delivery reports are collected as they
arrive. `flush(timeout)` waits for the rest; whatever is still queued when the timeout ends is
purged, so after `flush` nothing is pending and every message sent since the last flush is
either acknowledged or listed in the `DeliveryError` it raises: "failed" (not written: send it
again) or "unknown" (a request timed out in flight: it may be written). A broker that is down
therefore surfaces from `flush` (and `close`) within the timeout, never as silence.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Producer

from services.client.errors import DeliveryError, Undelivered
from services.client.records import Message
from services.common.errors import StreamopsError
from services.common.producing import delivery_outcome, produce_waiting

log = logging.getLogger("streamops.client")
PURGE_WAIT_S = 5.0  # purged messages' reports arrive at once; this bounds a stuck client


class Sender:
    """One idempotent producer and the outcome of everything it sent since the last flush."""

    def __init__(self, conf: dict[str, Any]) -> None:
        self.bootstrap = conf.get("bootstrap.servers", "")
        conf = {**conf, "error_cb": self._on_error, "logger": log}
        self._producer = Producer(conf)
        self._undelivered: list[Undelivered] = []
        self._acked = 0
        self._in_flight = 0
        self._last_error = ""

    def _on_error(self, err: KafkaError) -> None:
        # Client-level errors (all brokers down, authentication): kept for the DeliveryError.
        self._last_error = err.str()

    def _on_delivery(self, err: KafkaError | None, msg: Any) -> None:
        self._in_flight -= 1
        outcome = delivery_outcome(err)
        if outcome == "acked":
            self._acked += 1
            return
        key = msg.key()
        self._undelivered.append(
            Undelivered(
                msg.topic(),
                key.decode(errors="replace") if isinstance(key, bytes) else str(key),
                outcome,
                err.str() if err is not None else "",
            )
        )

    def send(self, topic: str, message: Message) -> None:
        """Produce one encoded message (returns at once; see `flush`)."""
        try:
            produce_waiting(
                self._producer,
                topic,
                message.value,
                message.key,
                headers=message.headers,
                on_delivery=self._on_delivery,
            )
        except KafkaException as exc:
            raise StreamopsError(f"{message.record} to {topic} not sent: {exc}") from None
        self._in_flight += 1
        self._producer.poll(0)  # serve delivery reports as we go

    def flush(self, timeout: float = 30.0) -> None:
        """Wait up to `timeout` s for every delivery; raise DeliveryError for those that failed."""
        left = self._producer.flush(timeout)
        if left:
            # Not delivered in time: purge, so each gets its final report now (queued ones as
            # failed, ones in flight as unknown) instead of landing unannounced later.
            self._producer.purge(in_queue=True, in_flight=True, blocking=True)
            deadline = time.monotonic() + PURGE_WAIT_S
            while self._in_flight > 0 and time.monotonic() < deadline:
                self._producer.poll(0.05)
        if self._in_flight > 0:  # reports that never came: nothing says they were not written
            self._undelivered.append(
                Undelivered("", "", "unknown", f"{self._in_flight} messages without a report")
            )
            self._in_flight = 0
        undelivered, acked, error = self._undelivered, self._acked, self._last_error
        self._undelivered, self._acked, self._last_error = [], 0, ""
        if undelivered:
            hints = (
                [f"no acknowledgement from {self.bootstrap} within {timeout:g} s"] if left else []
            )
            hints += [f"last client error: {error}"] if error else []
            raise DeliveryError(undelivered, acked, "; ".join(hints))
