"""Registry settings for integration tests: the real broker and Redis, a prefix, test tokens."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from services.common.settings import CommonSettings, Secret
from services.registry.config import RegistrySettings


def registry_settings(
    kafka_bootstrap: str,
    settings: CommonSettings,
    redis_password: str,
    prefix: str,
    keys_dir: Path,
    tokens: str,
    **extra: Any,
) -> RegistrySettings:
    """A registry on the test broker and Redis, trusting `keys_dir`, with these tokens."""
    return RegistrySettings(
        kafka_bootstrap=kafka_bootstrap,
        topic_prefix=prefix,
        redis_host=settings.redis_host,
        redis_port=settings.redis_port,
        redis_password=Secret(redis_password),
        trusted_keys_dir=str(keys_dir),
        tokens=Secret(tokens),
        transactional_id=f"{prefix}registry",
        replay_timeout_s=30,
        **extra,
    )
