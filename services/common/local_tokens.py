"""Registry tokens for a local stack: made once into `var/registry/tokens` (mode 0600).

The first `streamops infra up` (`make up`) writes one viewer, one editor and one owner token in
the registry's `tokens` setting format (`name:role:token,...`) and prints them; a registry whose
`STREAMOPS_REGISTRY_TOKENS` is empty reads this file, so the printed tokens work at once.

>>> import tempfile
>>> d = tempfile.mkdtemp()
>>> made, created = ensure(d)
>>> created, sorted(made), ensure(d) == (made, False)
(True, ['editor', 'owner', 'viewer'], True)
>>> read(d).count(":editor:")
1
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

ROLES = ("viewer", "editor", "owner")  # each token's principal is named after its role


def path(var_dir: str | Path) -> Path:
    """Where the local tokens live."""
    return Path(var_dir) / "registry" / "tokens"


def read(var_dir: str | Path) -> str | None:
    """The tokens setting from the file, or None when there is no file."""
    try:
        return path(var_dir).read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None


def _by_role(setting: str) -> dict[str, str]:
    out = {}
    for entry in setting.split(","):
        name, _, rest = entry.partition(":")
        role, _, token = rest.partition(":")
        if name == role and role in ROLES and token:
            out[role] = token
    return out


def ensure(var_dir: str | Path) -> tuple[dict[str, str], bool]:
    """(token by role, created now): the file's tokens, made first if there is no file."""
    existing = read(var_dir)
    if existing is not None:
        return _by_role(existing), False
    made = {role: secrets.token_urlsafe(24) for role in ROLES}
    target = path(var_dir)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(",".join(f"{role}:{role}:{token}" for role, token in made.items()) + "\n")
    return made, True
