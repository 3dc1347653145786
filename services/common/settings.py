"""Settings: one frozen object per service, from defaults, environment and flags, in that order.

Precedence, lowest first: the dataclass default, `STREAMOPS_<FIELD>`, `STREAMOPS_<SERVICE>_<FIELD>`,
then command-line flags. Environment is read only by `load_settings` (called from `__main__`).
Unknown `STREAMOPS_*` keys are rejected so a typo never silently falls back to a default, and
secrets are wrapped in `Secret` so they never appear in a repr or a log line.

>>> s = load_settings(CommonSettings, "scorer", {"STREAMOPS_KAFKA_BOOTSTRAP": "127.0.0.1:19092"})
>>> s.kafka_bootstrap
'127.0.0.1:19092'
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from services.common.errors import ConfigError

SERVICES = ("trainer", "scorer", "drift", "alerting", "registry", "cli")

# Read by the infra/ shell scripts, not by Python services; accepted so they are not "unknown".
INFRA_KEYS = frozenset(
    {
        "CACHE",
        "INSECURE",
        "KAFKA_PORT",
        "KAFKA_CONTROLLER_PORT",
        "KAFKA_BROKERS",
        "KAFKA_HEAP",
        "REDIS_PORT",
        "PYTHON",
        "TEST_TIMEOUT",
    }
)

REPO_ROOT = Path(__file__).resolve().parents[2]

S = TypeVar("S", bound="CommonSettings")


class Secret:
    """A string that prints as *** everywhere; call `reveal()` at the one place that needs it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The secret value itself."""
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __repr__(self) -> str:
        return "Secret('***')" if self._value else "Secret('')"

    __str__ = __repr__


@dataclasses.dataclass(frozen=True)
class CommonSettings:
    """Settings every service shares."""

    service: ClassVar[str] = "common"

    kafka_bootstrap: str = "127.0.0.1:9092"
    kafka_security_protocol: str = ""  # empty: the local broker's (var/kafka-security/protocol)
    kafka_sasl_mechanism: str = ""
    kafka_sasl_username: str = ""
    kafka_sasl_password: Secret = Secret("")
    kafka_ssl_ca_location: str = ""
    topic_prefix: str = "streamops."
    redis_host: str = "127.0.0.1"
    redis_port: int = 6379
    redis_password: Secret = Secret("")
    var_dir: str = str(REPO_ROOT / "var")
    # The registry's Deployment signing keys: it signs with the one `.key` there (made at its
    # first start); scorers and drift trust the `.pub` files there for Deployment records only.
    deployment_keys_dir: str = ""  # default: <var_dir>/keys/registry
    metrics_host: str = "127.0.0.1"  # 0.0.0.0 only inside a container, for Prometheus
    metrics_port: int = 0
    log_level: str = "INFO"

    def redis_secret(self) -> Secret:
        """The Redis password: the setting, else the file `infra/redis/redis.sh` generated."""
        if self.redis_password:
            return self.redis_password
        path = Path(self.var_dir) / "redis" / "password"
        if path.exists():
            return Secret(path.read_text().strip())
        return Secret("")

    def redis_options(self) -> dict[str, Any]:
        """host, port and password for a redis-py client (callers add their timeouts)."""
        password = self.redis_secret().reveal() or None
        return {"host": self.redis_host, "port": self.redis_port, "password": password}

    def deployment_keys(self) -> Path:
        """Where the registry's Deployment signing keys live (`deployment_keys_dir`)."""
        return Path(self.deployment_keys_dir or Path(self.var_dir) / "keys" / "registry")

    def describe(self) -> str:
        """One log line with every resolved setting, secrets redacted."""
        parts = [f"{f.name}={getattr(self, f.name)!r}" for f in dataclasses.fields(self)]
        return f"{type(self).__name__}(" + ", ".join(parts) + ")"


def _field_types(cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def _coerce(name: str, kind: Any, raw: str) -> Any:
    origin = typing.get_origin(kind)
    try:
        if kind is Secret:
            return Secret(raw)
        if kind is bool:
            lowered = raw.strip().lower()
            if lowered in ("1", "true", "yes", "on"):
                return True
            if lowered in ("0", "false", "no", "off"):
                return False
            raise ValueError(f"expected true/false, got {raw!r}")
        if kind is int:
            return int(raw)
        if kind is float:
            return float(raw)
        if origin is tuple:
            return tuple(p.strip() for p in raw.split(",") if p.strip())
        if origin in (typing.Union, types.UnionType):  # Optional[str]
            return raw or None
        return raw
    except ValueError as exc:
        raise ConfigError(f"setting {name}: {exc}") from None


def load_settings(
    cls: type[S],
    service: str,
    environ: Mapping[str, str],
    overrides: Mapping[str, Any] | None = None,
) -> S:
    """Build `cls` from defaults, `STREAMOPS_*`, `STREAMOPS_<SERVICE>_*` and flag overrides."""
    kinds = _field_types(cls)
    values: dict[str, Any] = {}
    service_prefix = f"STREAMOPS_{service.upper()}_"
    other_prefixes = tuple(f"STREAMOPS_{s.upper()}_" for s in SERVICES if s != service)
    scoped: dict[str, Any] = {}
    for key, raw in sorted(environ.items()):
        if not key.startswith("STREAMOPS_"):
            continue
        if key.startswith(service_prefix):
            name = key[len(service_prefix) :].lower()
            if name not in kinds:
                raise ConfigError(
                    f"unknown setting {key} for service {service!r}; known: "
                    + ", ".join(sorted(kinds))
                )
            scoped[name] = _coerce(key, kinds[name], raw)
            continue
        name = key[len("STREAMOPS_") :].lower()
        if name in kinds:
            values[name] = _coerce(key, kinds[name], raw)
        elif key.startswith(other_prefixes) or name.upper() in INFRA_KEYS:
            continue  # belongs to another service or to the infra scripts
        else:
            raise ConfigError(
                f"unknown setting {key}; remove it or check its spelling "
                f"(settings of {service}: {', '.join(sorted(kinds))})"
            )
    values.update(scoped)
    for name, value in (overrides or {}).items():
        if value is None:
            continue
        if name not in kinds:
            raise ConfigError(f"unknown setting {name!r} for service {service!r}")
        values[name] = _coerce(name, kinds[name], value) if isinstance(value, str) else value
    try:
        return cls(**values)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"invalid settings for {service}: {exc}") from None


class _SecretFlag(argparse.Action):
    """A secret setting passed as a flag: refused, as every local user can read a command line."""

    def __call__(self, parser: argparse.ArgumentParser, *_args: Any, **_kwargs: Any) -> None:
        parser.error(
            f"--{self.dest.replace('_', '-')} would put a secret on the command line, where every "
            f"local user can read it (ps); set {self.metavar} in the environment instead"
        )


def add_settings_arguments(parser: argparse.ArgumentParser, cls: type[CommonSettings]) -> None:
    """Add one `--flag-name` per settings field (default None, so unset flags change nothing).

    Secret fields come from the environment only: their flags exist to say so.
    """
    group = parser.add_argument_group("settings (also STREAMOPS_* environment variables)")
    common = {f.name for f in dataclasses.fields(CommonSettings)}
    for name, kind in _field_types(cls).items():
        flag = "--" + name.replace("_", "-")
        if kind is Secret:
            scope = "" if name in common else f"{cls.service.upper()}_"
            env = f"STREAMOPS_{scope}{name.upper()}"
            group.add_argument(
                flag, dest=name, action=_SecretFlag, metavar=env, help=argparse.SUPPRESS
            )
        elif kind is bool:
            group.add_argument(flag, dest=name, default=None, choices=("true", "false"))
        else:
            group.add_argument(flag, dest=name, default=None, metavar=name.upper())


def overrides_from_args(args: argparse.Namespace, cls: type[CommonSettings]) -> dict[str, Any]:
    """The settings flags a user actually passed."""
    return {f.name: getattr(args, f.name, None) for f in dataclasses.fields(cls)}
