"""Registry settings for integration tests: the real broker and Redis, a prefix, test tokens."""

from __future__ import annotations

import copy
import json
import math
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import redis
from redis.connection import Encoder

from services.common.kafka_acls import GRANTS
from services.common.settings import CommonSettings, Secret
from services.registry.config import RegistrySettings
from tests import kafka_login
from tests.kafka_support import make_topics


def registry_settings(
    kafka_bootstrap: str,
    settings: CommonSettings,
    redis_password: str,
    prefix: str,
    keys_dir: Path,
    tokens: str,
    **extra: Any,
) -> RegistrySettings:
    """A registry on the test broker and Redis, trusting `keys_dir`, with these tokens; it signs
    Deployment records with the key it makes in `keys_dir/registry`. Its topics are made here,
    as admin: on the secured broker the registry may not create them itself."""
    make_topics(kafka_bootstrap, prefix, REGISTRY_TOPICS)
    return RegistrySettings(
        **kafka_login.service_settings(kafka_bootstrap, "registry"),
        kafka_bootstrap=kafka_bootstrap,
        topic_prefix=prefix,
        redis_host=settings.redis_host,
        redis_port=settings.redis_port,
        redis_password=Secret(redis_password),
        trusted_keys_dir=str(keys_dir),
        deployment_keys_dir=str(keys_dir / "registry"),
        tokens=Secret(tokens),
        transactional_id=f"{prefix}registry",
        replay_timeout_s=30,
        **extra,
    )


# Every topic the registry follows, samples or writes: its row of the ACL table.
REGISTRY_TOPICS = sorted({*GRANTS["registry"].reads, *GRANTS["registry"].writes})

TOKENS = (
    "ana:owner:ana-token-16chars,bo:owner:bo-token-16chars,"
    "ed:editor:ed-token-16chars,vi:viewer:vi-token-16chars"
)
# A threshold whose direction is neither above nor below: refused when requested, and when an
# earlier registry accepted it, refused again at approval.
BAD_THRESHOLD = {
    "metric": "psi",
    "feature": None,
    "warning": 0.1,
    "critical": 0.2,
    "hysteresis": 0.0,
    "direction": "sideways",
}


def governance_request(
    deployment: str, actor: str, model: dict[str, Any] | None, setup: dict[str, Any]
) -> dict[str, Any]:
    """A pending set_champion request as a GovernanceEvent, as a registry would write it."""
    change = {
        "action": "set_champion",
        "model": model,
        "weight": 0.0,
        "mode": None,
        "to_revision": None,
        "setup": setup,
        "base_revision": None,
    }
    return {
        "event_id": uuid.uuid4().hex,
        "deployment": deployment,
        "action": "request",
        "actor": actor,
        "role": "editor",
        "request_id": uuid.uuid4().hex,
        "reason": "from a test",
        "at": 1_700_000_000_000,
        "payload": json.dumps(change, sort_keys=True),
        "previous_revision": None,
        "new_revision": None,
    }


class RedisStub:
    """A stand-in for the registry's Redis client in unit tests (no network).

    Every command's arguments go through redis-py's own encoder, so a value the real client
    would refuse (None, a dict) fails here the same way; hashes are kept, so reads after writes
    see them; a NaN score is refused as the server would. Pipelines are the client itself.
    """

    DEFAULTS: ClassVar[dict[str, Any]] = {
        "zcard": 0,
        "zrange": [],
        "zrevrange": [],
        "smembers": set(),
        "scard": 0,
        "get": None,
        "execute": [],
        "ping": True,
    }

    def __init__(self) -> None:
        self.hashes: dict[str, dict[str, bytes]] = {}
        self.calls = 0
        self._encoder = Encoder("utf-8", "strict", False)

    def _encode(self, args: Any) -> list[bytes]:
        return [self._encoder.encode(a) for a in args]

    def pipeline(self, transaction: bool = True) -> RedisStub:
        """The client itself: commands run at once."""
        return self

    def __enter__(self) -> RedisStub:
        return self

    def __exit__(self, *exc: Any) -> None:
        return None

    def hset(self, key: str, field: Any, value: Any) -> int:
        """Keep one hash field."""
        k, f, v = self._encode((key, field, value))
        self.hashes.setdefault(k.decode(), {})[f.decode()] = v
        return 1

    def hget(self, key: str, field: Any) -> bytes | None:
        """One hash field."""
        return self.hashes.get(key, {}).get(self._encode((field,))[0].decode())

    def hkeys(self, key: str) -> list[bytes]:
        """A hash's fields."""
        return [f.encode() for f in self.hashes.get(key, {})]

    def hdel(self, key: str, *fields: Any) -> int:
        """Drop hash fields."""
        held = self.hashes.get(key, {})
        return sum(held.pop(f.decode(), None) is not None for f in self._encode(fields))

    def zadd(self, key: str, mapping: dict[Any, Any]) -> int:
        """Scores must be numbers Redis accepts (not NaN)."""
        self._encode((key, *mapping, *mapping.values()))
        for score in mapping.values():
            if isinstance(score, float) and math.isnan(score):
                raise redis.ResponseError("value is not a valid float")
        return len(mapping)

    def __getattr__(self, name: str) -> Any:
        def command(*args: Any, **kwargs: Any) -> Any:
            self._encode(args)
            self.calls += 1
            return copy.copy(self.DEFAULTS.get(name))

        return command


def eventually(check: Callable[[], Any], timeout_s: float = 20.0, what: str = "") -> Any:
    """Poll `check` until it returns something truthy."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"not within {timeout_s} s: {what}")


def drift_report(model_id: str = "m1") -> dict[str, Any]:
    """A DriftReport of one window of the credit deployment (one feature, accuracy 0.9)."""
    return {
        "deployment": "credit",
        "model_id": model_id,
        "model_version": 1,
        "window_start": 1_000,
        "window_end": 61_000,
        "event_count": 10,
        "prediction_count": 10,
        "features": [
            {
                "name": "age",
                "psi": 0.3,
                "ks": 0.01,
                "js": 0.2,
                "chi2_p": None,
                "importance": 0.1,
                "missing_rate": 0.0,
                "out_of_range_rate": 0.0,
                "unseen_rate": 0.0,
            }
        ],
        "weighted_drift": 0.03,
        "prediction_psi": 0.01,
        "metrics": {"accuracy": 0.9},
        "label_coverage": 0.5,
        "label_delay_ms_p50": 100.0,
        "schema_violations": 0,
        "late_events": 0,
        "change_point": False,
        "challengers": [],
    }
