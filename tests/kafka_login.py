"""How tests log in to the broker they talk to, secured (SASL_SSL, ACLs) or PLAINTEXT.

The suite's own clients (producing input, reading output, making topics) log in as `admin`, the
super user; services started by tests log in as themselves, so the ACL table is what they meet.
A broker's logins live in its var/kafka-security (`infra/kafka/security.sh`): the shared
broker's under the repo's var/ (or STREAMOPS_VAR_DIR), a private broker's under its own var dir,
which `tests/broker_support.PrivateKafka` registers here by its address.
"""

from __future__ import annotations

import os
from pathlib import Path

from services.common import kafka_security
from services.common.kafka_config import KafkaConfig
from services.common.settings import Secret

REPO = Path(__file__).resolve().parents[1]
_VAR_DIRS: dict[str, Path] = {}  # host:port -> that broker's var dir


def register(bootstrap: str, var_dir: Path) -> None:
    """Note where a private broker keeps its logins."""
    for address in bootstrap.split(","):
        _VAR_DIRS[address.strip()] = var_dir


def var_dir_of(bootstrap: str) -> Path:
    """The var dir holding the logins of the broker at `bootstrap`."""
    for address in bootstrap.split(","):
        if address.strip() in _VAR_DIRS:
            return _VAR_DIRS[address.strip()]
    return Path(os.environ.get("STREAMOPS_VAR_DIR") or REPO / "var")


def secured(bootstrap: str) -> bool:
    """True when the broker at `bootstrap` wants logins."""
    return kafka_security.protocol(var_dir_of(bootstrap)).startswith("SASL")


def kafka_config(bootstrap: str, client_id: str = "test", principal: str = "admin") -> KafkaConfig:
    """The project's client config for `principal` on the broker at `bootstrap`."""
    return KafkaConfig.local(bootstrap, var_dir_of(bootstrap), client_id, principal)


def conf(bootstrap: str, principal: str = "admin") -> dict:
    """Connection settings only (bootstrap and login), for a raw confluent-kafka client."""
    return kafka_config(bootstrap, "test", principal).admin()


def service_env(bootstrap: str, service: str) -> dict[str, str]:
    """Environment that logs a service process in as itself on the broker at `bootstrap`
    (explicit, so it holds whatever var_dir the test gives the service)."""
    principal = kafka_security.principal_of(service)
    return kafka_config(bootstrap, service, principal).environment()


def service_settings(bootstrap: str, service: str) -> dict:
    """The same login as settings fields, for a service run in-process."""
    out: dict = {
        k.removeprefix("STREAMOPS_").lower(): v for k, v in service_env(bootstrap, service).items()
    }
    if "kafka_sasl_password" in out:
        out["kafka_sasl_password"] = Secret(out["kafka_sasl_password"])
    return out
