"""Fixtures for the real components: the Kafka broker and Redis started by infra/ scripts.

A test that needs one and cannot reach it FAILS with what to do; it never skips. A test that
carries none of the suite markers would never run in `make test` (each suite is selected by its
marker), so collecting one is an error.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from services.common.settings import CommonSettings, load_settings
from tests import kafka_login

REPO = Path(__file__).resolve().parents[1]
KAFKA_HINT = "start it with `make up` (or `bash infra/kafka/kafka.sh start`)"
REDIS_HINT = "start it with `make up` (or `bash infra/redis/redis.sh start`)"
SUITES = ("unit", "integration", "e2e")


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects the tests that carry no marker
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Refuse tests without a suite marker: `make test` would silently never run them."""
    unmarked = [i.nodeid for i in items if not any(i.get_closest_marker(m) for m in SUITES)]
    if unmarked:
        raise pytest.UsageError(
            "tests without a suite marker (add `pytestmark = pytest.mark.unit`, `integration` "
            "or `e2e` to their module): " + ", ".join(unmarked)
        )


@pytest.fixture(scope="session")
def settings() -> CommonSettings:
    """Settings as a service would see them (environment included)."""
    return load_settings(CommonSettings, "tests", os.environ)


@pytest.fixture(scope="session")
def kafka_bootstrap(settings: CommonSettings) -> str:
    """The real broker's bootstrap address; fails the test if the broker does not answer."""
    from confluent_kafka.admin import AdminClient

    try:
        AdminClient(kafka_login.conf(settings.kafka_bootstrap)).list_topics(timeout=10)
    except Exception as exc:
        pytest.fail(f"Kafka at {settings.kafka_bootstrap} is not reachable ({exc}); {KAFKA_HINT}")
    return settings.kafka_bootstrap


@pytest.fixture(scope="session")
def redis_password(settings: CommonSettings) -> str:
    """The password of the project's Redis (setting, or the file infra/redis/redis.sh wrote)."""
    secret = settings.redis_secret()
    if not secret:
        pytest.fail(
            f"no Redis password found (STREAMOPS_REDIS_PASSWORD or var/redis/password); "
            f"{REDIS_HINT}"
        )
    return secret.reveal()


@pytest.fixture()
def redis_client(settings: CommonSettings, redis_password: str) -> Iterator[object]:
    """A client for the real Redis; fails the test if it does not answer."""
    import redis

    client = redis.Redis(
        host=settings.redis_host,
        port=settings.redis_port,
        password=redis_password,
        socket_timeout=5,
    )
    try:
        client.ping()
    except Exception as exc:
        pytest.fail(
            f"Redis at {settings.redis_host}:{settings.redis_port} is not reachable "
            f"({exc}); {REDIS_HINT}"
        )
    yield client
    client.close()


@pytest.fixture()
def drift_group(redis_client: Any) -> Iterator[str]:
    """A unique drift group id. Its Redis keys (every process's and shard's, all under
    ``streamops:drift:<group>:``) are deleted after the test: they would otherwise stay for the
    join TTL, a day, in the Redis every later run shares."""
    group = f"streamops-drift-it-{uuid.uuid4().hex[:8]}"
    yield group
    keys = list(redis_client.scan_iter(match=f"streamops:drift:{group}:*", count=5000))
    for start in range(0, len(keys), 1000):
        redis_client.delete(*keys[start : start + 1000])


@pytest.fixture()
def prefix() -> str:
    """A unique topic prefix per test, so tests never see each other's data."""
    return f"t{uuid.uuid4().hex[:10]}."
