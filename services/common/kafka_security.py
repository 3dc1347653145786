"""Where a client of the local secured broker finds its login: all of it under var/.

`infra/kafka/kafka.sh` writes, at each start, the broker's protocol into
var/kafka-security/protocol (SASL_SSL, or PLAINTEXT under STREAMOPS_INSECURE=1), and, once, the
CA certificate and one SCRAM password per principal (users/<principal>, mode 0600). A service's
principal is its own name; the CLI's is `admin`, the Python client's `client`. Settings given
explicitly (`STREAMOPS_KAFKA_SECURITY_PROTOCOL`, `..._SASL_USERNAME`, ...) win over all of this:
that is how a stack uses a broker it did not start.

>>> import tempfile, pathlib
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> protocol(d)
'PLAINTEXT'
>>> (d / "kafka-security").mkdir()
>>> _ = (d / "kafka-security" / "protocol").write_text("SASL_SSL\\n")
>>> protocol(d), principal_of("cli"), principal_of("scorer")
('SASL_SSL', 'admin', 'scorer')
"""

from __future__ import annotations

import os
from pathlib import Path

from services.common.errors import ConfigError
from services.common.settings import Secret

MECHANISM = "SCRAM-SHA-512"
_PRINCIPALS = {"cli": "admin"}


def security_dir(var_dir: str | os.PathLike[str]) -> Path:
    """The folder with the CA certificate, the users' passwords and the protocol."""
    return Path(var_dir) / "kafka-security"


def protocol(var_dir: str | os.PathLike[str]) -> str:
    """The local broker's protocol as its last start wrote it; PLAINTEXT when none did."""
    try:
        written = (security_dir(var_dir) / "protocol").read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return "PLAINTEXT"
    return written or "PLAINTEXT"


def principal_of(service: str) -> str:
    """The Kafka principal a service logs in as."""
    return _PRINCIPALS.get(service, service)


def password(var_dir: str | os.PathLike[str], principal: str) -> Secret:
    """The principal's SCRAM password from var/kafka-security/users/<principal>."""
    path = security_dir(var_dir) / "users" / principal
    try:
        return Secret(path.read_text(encoding="utf-8").strip())
    except FileNotFoundError:
        raise ConfigError(
            f"no Kafka password for {principal!r} at {path}: the secured broker writes one per "
            "principal at its first start (`make up`); or set STREAMOPS_KAFKA_SASL_USERNAME and "
            "STREAMOPS_KAFKA_SASL_PASSWORD"
        ) from None
    except PermissionError:
        raise ConfigError(
            f"cannot read {path}: run as the user that started the broker (the file is 0600)"
        ) from None


def ca_location(var_dir: str | os.PathLike[str]) -> str:
    """The local CA certificate that signed the broker's."""
    return str(security_dir(var_dir) / "ca.crt")
