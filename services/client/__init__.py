"""`import streamops`: the Python client of a streamops installation, over confluent-kafka.

Produces FeatureEvents to `events`, Actuals to `actuals` and, for external deployments (the
model runs in your own service), the champion's Predictions to `predictions`; consumes
`predictions` (without a consumer group); reads models and deployments from the registry API;
publishes models (`publish_model`). Stores nothing. Settings as for the CLI (`STREAMOPS_*`,
`STREAMOPS_CLI_REGISTRY_URL`, `STREAMOPS_CLI_TOKEN`); arguments win.

>>> import streamops
>>> with streamops.Client() as client:  # doctest: +SKIP
...     aid = client.send_event("credit", {"salary": 52000, "car": "3", "age": None})
...     client.send_actual("credit", aid, "1")
...     for row in client.predictions("credit", from_beginning=True, timeout=5):
...         print(row["association_id"], row["prediction"])
...     client.deployment("credit")["champion"]

Modules: `client` (the Client), `records` (building and checking records), `sender`
(delivery accounting), `predictions` (the iterator), `registry` (API reads), `errors`,
`publishing` (publish_model). Imported as `streamops` or `services.client`, it is the same
code: its modules import each other by their `services.client` names.
"""

from __future__ import annotations

import logging

from services.client.client import Client
from services.client.errors import (
    ApiError,
    ApiNotFound,
    ApiUnauthorized,
    ApiUnreachable,
    DeliveryError,
    InvalidRecord,
    NotExternal,
    Undelivered,
)
from services.client.predictions import PredictionStream
from services.client.publishing import publish_model
from services.client.records import ModelRef

# A library logs, the application decides where to: librdkafka's connection messages stay quiet
# unless logging is configured (a DeliveryError carries the last one anyway).
logging.getLogger("streamops.client").addHandler(logging.NullHandler())

__all__ = [
    "ApiError",
    "ApiNotFound",
    "ApiUnauthorized",
    "ApiUnreachable",
    "Client",
    "DeliveryError",
    "InvalidRecord",
    "ModelRef",
    "NotExternal",
    "PredictionStream",
    "Undelivered",
    "publish_model",
]
