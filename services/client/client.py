"""`streamops.Client`: send events and actuals, report and read predictions, read the registry.

>>> import streamops
>>> with streamops.Client(prefix="streamops.") as client:  # doctest: +SKIP
...     aid = client.send_event("credit", {"salary": 52000, "car": "3"})
...     client.send_actual("credit", aid, "1")
"""

from __future__ import annotations

import os
import weakref
from collections.abc import Mapping
from typing import Any

from services.client.errors import NotExternal
from services.client.predictions import PredictionStream
from services.client.records import (
    ModelRef,
    Time,
    Value,
    actual_message,
    event_message,
    new_association_id,
    now_ms,
    prediction_message,
)
from services.client.registry import RegistryReader
from services.client.sender import Sender
from services.common.cli_settings import CliSettings, cli_settings
from services.common.errors import StreamopsError
from services.common.kafka_config import KafkaConfig
from services.common.settings import Secret
from services.common.topics import TopicNamer

CLIENT_ID = "streamops-client"


class Client:
    """A connection to one streamops installation: its broker, topic prefix and registry.

    Settings come from `STREAMOPS_*` as for the CLI (`STREAMOPS_KAFKA_BOOTSTRAP`,
    `STREAMOPS_TOPIC_PREFIX`, `STREAMOPS_CLI_REGISTRY_URL`, `STREAMOPS_CLI_TOKEN`, ...);
    arguments given here win. Sending is asynchronous: `flush()` (and `close()`, and leaving a
    `with` block) waits for the broker and raises `DeliveryError` for what it did not accept.
    Not thread-safe: one client per thread.

    >>> client = Client(bootstrap="127.0.0.1:9092", environ={})
    >>> client.topics.events
    'streamops.events'
    """

    def __init__(
        self,
        bootstrap: str | None = None,
        prefix: str | None = None,
        registry_url: str | None = None,
        token: str | Secret | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        overrides = {
            "kafka_bootstrap": bootstrap,
            "topic_prefix": prefix,
            "registry_url": registry_url,
            "token": Secret(token) if isinstance(token, str) else token,
        }
        self.settings: CliSettings = cli_settings(
            os.environ if environ is None else environ, overrides
        )
        self.topics = TopicNamer(self.settings.topic_prefix)
        self._kafka = KafkaConfig.from_settings(self.settings, CLIENT_ID, principal="client")
        self._sender: Sender | None = None  # made on the first send: reading needs none
        self._registry: RegistryReader | None = None
        self._champions: dict[str, ModelRef] = {}
        self._streams: weakref.WeakSet[PredictionStream] = weakref.WeakSet()
        self._closed = False

    # -- sending --------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise StreamopsError("this streamops.Client is closed; make a new one")

    def _send(self) -> Sender:
        self._check_open()
        if self._sender is None:
            self._sender = Sender(self._kafka.producer())
        return self._sender

    def send_event(
        self,
        deployment: str,
        features: Mapping[str, Value],
        association_id: str | None = None,
        event_time: Time | None = None,
        attributes: Mapping[str, str] | None = None,
    ) -> str:
        """Send one FeatureEvent to be scored; returns its association id (a new one if None).

        `features` maps names to numbers, strings or None (missing); `event_time` is epoch
        milliseconds, ISO-8601 or a datetime (default now). Raises InvalidRecord, nothing sent.

        >>> aid = client.send_event("credit", {"salary": 52000.0, "car": "3"})  # doctest: +SKIP
        """
        aid = new_association_id() if association_id is None else association_id
        message = event_message(deployment, features, aid, event_time, attributes)
        self._send().send(self.topics.events, message)
        return aid

    def send_actual(
        self,
        deployment: str,
        association_id: str,
        label: str | float,
        actual_time: Time | None = None,
    ) -> None:
        """Send the true label of an earlier event (joined to its prediction by association id).

        >>> client.send_actual("credit", aid, "1")  # doctest: +SKIP
        """
        message = actual_message(deployment, association_id, label, actual_time)
        self._send().send(self.topics.actuals, message)

    def report_prediction(
        self,
        deployment: str,
        association_id: str,
        features: Mapping[str, Value],
        prediction: str | float,
        probabilities: Mapping[str, float] | None = None,
        model: ModelRef | Mapping[str, Any] | None = None,
        event_time: Time | None = None,
    ) -> None:
        """Report what your own service predicted for an external deployment.

        Writes the FeatureEvent to `events` and the champion's Prediction (served) to
        `predictions`, both keyed by `association_id`, with the same event time. `model` is
        the champion the prediction is attributed to; by default it is looked up once per
        deployment from the registry (see `champion`), which also checks that the deployment
        is external. Both records are checked before either is sent.

        >>> client.report_prediction("fraud", "tx-1", {"amount": 12.5}, "0",
        ...                          probabilities={"0": 0.9, "1": 0.1})  # doctest: +SKIP
        """
        ref = self.champion(deployment) if model is None else ModelRef.of(model)
        when = now_ms() if event_time is None else event_time
        event = event_message(deployment, features, association_id, when)
        row = prediction_message(deployment, association_id, ref, prediction, probabilities, when)
        sender = self._send()
        sender.send(self.topics.events, event)
        sender.send(self.topics.predictions, row)

    def flush(self, timeout: float = 30.0) -> None:
        """Wait up to `timeout` s for every message sent so far; raises DeliveryError listing
        those not delivered (nothing is left pending afterwards)."""
        if self._sender is not None:
            self._sender.flush(timeout)

    def close(self, timeout: float = 30.0) -> None:
        """Flush (raising DeliveryError like `flush`), stop open prediction iterators and
        close the registry connections. Closing twice does nothing."""
        if self._closed:
            return
        self._closed = True
        for stream in list(self._streams):
            stream.close()
        if self._registry is not None:
            self._registry.close()
        self.flush(timeout)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- reading --------------------------------------------------------------------------

    def predictions(
        self, deployment: str, from_beginning: bool = False, timeout: float | None = None
    ) -> PredictionStream:
        """Iterate the deployment's predictions as dicts (the Prediction record's fields; the
        champion's served rows and any challenger rows: see `role` and `served`).

        From now (default) or the beginning of the topic; with `timeout`, stops after that
        many seconds without a prediction of this deployment. Reads without a consumer group
        (see services/client/predictions.py). Use it in a `with` block, or `close()` it.

        >>> for row in client.predictions("credit", timeout=5):  # doctest: +SKIP
        ...     print(row["association_id"], row["prediction"], row["probabilities"])
        """
        self._check_open()
        conf = self._kafka.consumer(f"{CLIENT_ID}-tail", enable_auto_commit=False)
        stream = PredictionStream(conf, self.topics, deployment, from_beginning, timeout)
        self._streams.add(stream)
        return stream

    @property
    def registry(self) -> RegistryReader:
        """The registry reader (made on first use)."""
        if self._registry is None:
            s = self.settings
            self._registry = RegistryReader(s.registry_url, s.token, s.timeout_s)
        return self._registry

    def models(self) -> list[dict[str, Any]]:
        """Every model in the registry: name, versions, latest version."""
        return self.registry.models()

    def model(self, name: str, version: int | None = None) -> dict[str, Any]:
        """One model version from the registry (the latest when `version` is None)."""
        return self.registry.model(name, version)

    def deployments(self) -> list[dict[str, Any]]:
        """Every deployment's current revision."""
        return self.registry.deployments()

    def deployment(self, name: str) -> dict[str, Any]:
        """A deployment's current revision (champion, challengers, thresholds, policy...)."""
        return self.registry.deployment(name)

    def champion(self, deployment: str, refresh: bool = False) -> ModelRef:
        """The champion of an external deployment, read from the registry once and kept
        (`refresh=True` reads it again, e.g. after a new version was approved). Raises
        NotExternal if the registry says the deployment is served by the scorer."""
        if refresh or deployment not in self._champions:
            ref, external = self.registry.champion(deployment)
            if external is False:
                raise NotExternal(
                    f"deployment {deployment!r} is served by the scorer (external is false): "
                    "report predictions only for external deployments (deploy it with "
                    '`"external": true`), or pass model= to attribute them yourself'
                )
            self._champions[deployment] = ref
        return self._champions[deployment]
