"""API tokens of a local stack, made once into var/ (mode 0600), and the shortest token allowed.

- `var/registry/tokens`: one viewer, one editor and one owner token in the registry's `tokens`
  setting format (`name:role:token,...`); a registry whose `STREAMOPS_REGISTRY_TOKENS` is empty
  reads this file.
- `var/alerting/token`: the alerting API's token; an alerting service whose
  `STREAMOPS_ALERTING_API_TOKEN` is empty reads it, and makes it at its first start.

The first `streamops infra up` (`make up`) makes both and prints them; later runs print only
where they are. Every token, made here or configured, has at least `MIN_LENGTH` characters.

>>> import tempfile
>>> d = tempfile.mkdtemp()
>>> made, created = ensure_registry(d)
>>> created, sorted(made), ensure_registry(d) == (made, False)
(True, ['editor', 'owner', 'viewer'], True)
>>> read_registry(d).count(":editor:")
1
>>> token, created = ensure_alerting(d)
>>> created, len(token) >= MIN_LENGTH, ensure_alerting(d) == (token, False)
(True, True, True)
"""

from __future__ import annotations

import secrets
from pathlib import Path

from services.common import secret_files
from services.common.errors import ConfigError

ROLES = ("viewer", "editor", "owner")  # each registry token's principal is named after its role
MIN_LENGTH = 16
HOW_TO_MAKE = 'python -c "import secrets; print(secrets.token_urlsafe(24))"'


def check(token: str, what: str, fix: str = "set a longer one") -> None:
    """ConfigError when `token` is shorter than MIN_LENGTH; `what` says where it came from."""
    if len(token) < MIN_LENGTH:
        raise ConfigError(
            f"{what} is shorter than {MIN_LENGTH} characters (the token itself is not shown); "
            f"{fix}, e.g. made with `{HOW_TO_MAKE}`"
        )


def _new_token() -> str:
    return secrets.token_urlsafe(24)  # 32 characters


def registry_path(var_dir: str | Path) -> Path:
    """Where the local registry tokens live."""
    return Path(var_dir) / "registry" / "tokens"


def read_registry(var_dir: str | Path) -> str | None:
    """The registry tokens setting from the file, or None when there is no file."""
    return secret_files.read(registry_path(var_dir))


def _by_role(setting: str) -> dict[str, str]:
    out = {}
    for entry in setting.split(","):
        name, _, rest = entry.partition(":")
        role, _, token = rest.partition(":")
        if name == role and role in ROLES and token:
            out[role] = token
    return out


def ensure_registry(var_dir: str | Path) -> tuple[dict[str, str], bool]:
    """(token by role, created now): the file's tokens, made first if there is no file."""
    made = {role: _new_token() for role in ROLES}
    line = ",".join(f"{role}:{role}:{token}" for role, token in made.items())
    if secret_files.create(registry_path(var_dir), line + "\n"):
        return made, True
    return _by_role(read_registry(var_dir) or ""), False


def alerting_path(var_dir: str | Path) -> Path:
    """Where the local alerting API token lives."""
    return Path(var_dir) / "alerting" / "token"


def ensure_alerting(var_dir: str | Path) -> tuple[str, bool]:
    """(token, created now): the alerting token file's token, made first if there is no file."""
    made = _new_token()
    if secret_files.create(alerting_path(var_dir), made + "\n"):
        return made, True
    return secret_files.read(alerting_path(var_dir)) or "", False
