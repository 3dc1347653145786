"""Fixtures shared by integration tests: a registry served over HTTP on a real port."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
import uvicorn

from services.common import serde
from services.registry.app import Registry, redis_client
from services.registry.view import RegistryView
from tests.kafka_support import free_port, make_topics, produce
from tests.model_factory import credit_content, keypair, published
from tests.registry_support import TOKENS, eventually, registry_settings


@pytest.fixture()
def registry_url(kafka_bootstrap, settings, redis_password, prefix, tmp_path) -> Iterator[str]:
    """A registry (the service's own app, on the real broker and Redis) served by uvicorn on a
    real port, with model credit v1 published."""
    make_topics(kafka_bootstrap, prefix, ["models", "deployments", "governance", "drift"])
    key = keypair(tmp_path / "keys")
    s = registry_settings(
        kafka_bootstrap, settings, redis_password, prefix, tmp_path / "keys", TOKENS
    )
    record = published(credit_content(estimator="logreg", rows=600), key)  # quick to train
    produce(
        kafka_bootstrap, f"{prefix}models", [(b"credit", serde.encode("ModelPublished", record))]
    )
    registry = Registry(s).start()
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(registry.app, host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        eventually(lambda: server.started, 10, "uvicorn started")
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        registry.close()
        RegistryView(redis_client(s), prefix).clear()
