"""Who is calling: a live token's account, zone and scopes (read by `api.accounts.authenticate`,
used by the routes and by every GraphQL resolver's context)."""

import dataclasses
from dataclasses import dataclass


@dataclass(frozen=True)
class Principal:
    """Who is calling: the token's account (with its zone) and scopes."""

    account_id: int
    token_id: int
    scopes: frozenset[str]
    timezone: str
    # The token's last_used_at as read when authenticated (`use_to_record`).
    last_used_at: int | None = dataclasses.field(default=None, compare=False)

    def has(self, scope: str) -> bool:
        return scope in self.scopes or "admin" in self.scopes
