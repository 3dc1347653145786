"""Who may do what: API tokens map to a named principal with a role (viewer < editor < owner).

Tokens come from one secret setting, a comma-separated list of `name:role:token`, each token at
least 16 characters (services/common/local_tokens.py). Tokens are compared in constant time so
response timing does not reveal how much of a guess was right.

>>> table = TokenTable.parse(Secret("ana:owner:ana-0123456789abcdef,bo:editor:bo-0123456789abcdef"))
>>> table.authenticate("ana-0123456789abcdef")
Principal(name='ana', role=<Role.OWNER: 'owner'>)
>>> table.authenticate("nope") is None
True
"""

from __future__ import annotations

import dataclasses
import enum
import hmac

from services.common import local_tokens
from services.common.errors import ConfigError
from services.common.settings import Secret


class Role(enum.StrEnum):
    """A principal's role; each one includes the rights of the ones before it."""

    VIEWER = "viewer"
    EDITOR = "editor"
    OWNER = "owner"
    POLICY = "policy"  # the registry itself, approving under an auto_approve policy

    def allows(self, needed: Role) -> bool:
        """True when this role has at least the rights of `needed`."""
        return _RANK[self] >= _RANK[needed]


_RANK = {Role.VIEWER: 0, Role.EDITOR: 1, Role.OWNER: 2, Role.POLICY: 2}


@dataclasses.dataclass(frozen=True)
class Principal:
    """An authenticated caller."""

    name: str
    role: Role


ANONYMOUS = Principal("anonymous", Role.VIEWER)
POLICY = Principal("policy", Role.POLICY)


class TokenTable:
    """Looks up the principal that owns a bearer token."""

    def __init__(self, entries: list[tuple[str, Principal]]) -> None:
        self._entries = [(token.encode(), principal) for token, principal in entries]

    @classmethod
    def parse(cls, tokens: Secret) -> TokenTable:
        """Parse `name:role:token[,name:role:token...]`; raises ConfigError naming the bad entry."""
        entries: list[tuple[str, Principal]] = []
        names: set[str] = set()
        for position, item in enumerate(p.strip() for p in tokens.reveal().split(",")):
            if not item:
                continue
            parts = item.split(":", 2)
            if len(parts) != 3 or not all(parts):
                raise ConfigError(
                    f"registry tokens: entry {position + 1} is not name:role:token "
                    "(the token itself is not shown)"
                )
            name, role, token = parts
            if role not in (Role.VIEWER, Role.EDITOR, Role.OWNER):
                raise ConfigError(
                    f"registry tokens: {name!r} has role {role!r}; use viewer, editor or owner"
                )
            if name in names or name == POLICY.name:
                raise ConfigError(f"registry tokens: name {name!r} is used twice or reserved")
            local_tokens.check(token, f"registry tokens: the token of {name!r}")
            names.add(name)
            entries.append((token, Principal(name, Role(role))))
        return cls(entries)

    def authenticate(self, token: str) -> Principal | None:
        """The principal owning `token`, or None."""
        given = token.encode()
        found = None
        for known, principal in self._entries:
            # Compare against every entry (no early exit) to keep timing independent of the table.
            if hmac.compare_digest(known, given):
                found = principal
        return found

    def __len__(self) -> int:
        return len(self._entries)
