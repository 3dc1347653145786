"""The project's Redis (infra/redis/redis.sh) demands its password and listens on loopback only.

Needs the real Redis on 127.0.0.1 (port `STREAMOPS_REDIS_PORT`, default 6379); the password comes
from `STREAMOPS_REDIS_PASSWORD` or the `var/redis/password` file the script generated. If Redis
is not running these tests fail and say how to start it; they never skip.
"""

from __future__ import annotations

import stat
import uuid
from pathlib import Path

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from services.common.settings import CommonSettings

pytestmark = pytest.mark.integration

HINT = "start it with `make up` or `infra/redis/redis.sh start`"


def _client(settings: CommonSettings, password: str | None) -> redis.Redis:
    # redis-py retries connection errors, refusals included, with backoff: answer at once instead.
    return redis.Redis(
        host=settings.redis_host,
        port=settings.redis_port,
        password=password,
        socket_timeout=5,
        retry=Retry(NoBackoff(), 0),
    )


@pytest.fixture()
def authed(settings: CommonSettings, redis_password: str) -> redis.Redis:
    """A client with the right password, after proving Redis answers at all."""
    client = _client(settings, redis_password)
    try:
        client.ping()
    except redis.AuthenticationError as exc:
        pytest.fail(f"Redis refused the configured password ({exc}); restart it: {HINT}")
    except (redis.ConnectionError, redis.TimeoutError) as exc:
        pytest.fail(
            f"Redis at {settings.redis_host}:{settings.redis_port} unreachable ({exc}); {HINT}"
        )
    return client


def _refusal(client: redis.Redis) -> Exception:
    with pytest.raises((redis.AuthenticationError, redis.ResponseError)) as caught:
        client.set(f"streamops-test:{uuid.uuid4().hex}", "must not be stored")
    return caught.value


def test_password_allows_ping_and_round_trip(authed: redis.Redis) -> None:
    """With the password, PING answers and a value written is read back."""
    key = f"streamops-test:{uuid.uuid4().hex}"
    value = uuid.uuid4().hex
    assert authed.ping() is True
    assert authed.set(key, value, ex=60) is True
    assert authed.get(key) == value.encode()
    assert authed.delete(key) == 1


def test_no_password_is_refused(authed: redis.Redis, settings: CommonSettings) -> None:
    """A client without the password cannot run commands."""
    anonymous = _client(settings, None)
    error = _refusal(anonymous)
    assert "auth" in str(error).lower()


def test_wrong_password_is_refused(
    authed: redis.Redis, settings: CommonSettings, redis_password: str
) -> None:
    """A wrong password is rejected at connection time."""
    wrong = _client(settings, redis_password + "-wrong")
    error = _refusal(wrong)
    assert isinstance(error, redis.AuthenticationError)


def test_bound_to_loopback_only(authed: redis.Redis) -> None:
    """The server listens on 127.0.0.1 alone, with protected mode on."""
    assert authed.config_get("bind")["bind"].split() == ["127.0.0.1"]
    assert authed.config_get("protected-mode")["protected-mode"] == "yes"


def test_append_only_every_second(authed: redis.Redis) -> None:
    """Writes go to the append-only file, fsynced every second (what R11 relies on)."""
    config = authed.config_get("append*")
    assert config["appendonly"] == "yes"
    assert config["appendfsync"] == "everysec"


def test_no_rdb_snapshots(authed: redis.Redis) -> None:
    """The append-only file is the only persistence: no periodic RDB snapshot forks and
    rewrites the whole dataset besides it."""
    assert authed.config_get("save")["save"] == ""


def test_generated_secrets_are_owner_only(authed: redis.Redis, settings: CommonSettings) -> None:
    """The generated password file and the config holding it are readable by their owner only."""
    redis_dir = Path(settings.var_dir) / "redis"
    checked = [p for p in (redis_dir / "password", redis_dir / "redis.conf") if p.exists()]
    assert checked, f"neither {redis_dir}/password nor redis.conf exists; {HINT}"
    for path in checked:
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode & 0o077 == 0, f"{path} is mode {oct(mode)}; expected 0600"
