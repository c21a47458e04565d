"""The per-request context: caller, session, settings and the request's DataLoaders."""

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import strawberry
from sqlmodel.ext.asyncio.session import AsyncSession
from starlette.requests import Request
from starlette.responses import Response
from strawberry.dataloader import DataLoader
from strawberry.permission import BasePermission
from strawberry.types import Info

from models.db import now
from models.principal import Principal
from models.settings import Settings
from resolvers.entities import AgentRow, ContactRow, TagRow
from resolvers.loaders import Batches


@dataclass
class Loaders:
    """DataLoaders created once per request; nothing cached outlives the request."""

    batches: Batches
    contact: DataLoader[int, ContactRow | None] = field(init=False)
    agent: DataLoader[int, AgentRow | None] = field(init=False)
    contact_tags: DataLoader[int, list[TagRow]] = field(init=False)
    conversation_tags: DataLoader[int, list[TagRow]] = field(init=False)

    def __post_init__(self) -> None:
        self.contact = DataLoader(load_fn=self.batches.contacts)
        self.agent = DataLoader(load_fn=self.batches.agents)
        self.contact_tags = DataLoader(load_fn=self.batches.contact_tags)
        self.conversation_tags = DataLoader(load_fn=self.batches.conversation_tags)


@dataclass
class Context:
    request: Request
    response: Response | None
    principal: Principal
    session: AsyncSession
    settings: Settings
    request_id: str
    clock: Callable[[], int] = now  # UTC epoch seconds: what presets resolve "today" against

    @property
    def account_id(self) -> int:
        return self.principal.account_id

    @cached_property
    def loaders(self) -> Loaders:
        return Loaders(Batches(self.session, self.principal.account_id))


WareportsInfo = Info[Context, None]


class _ScopePermission(BasePermission):
    scope: str = ""

    @property
    def message(self) -> str:  # type: ignore[override]
        return f"this field needs the scope {self.scope!r}"

    def has_permission(self, source: Any, info: strawberry.Info, **kwargs: Any) -> bool:
        context: Context = info.context
        self.error_extensions = {"code": "FORBIDDEN", "scope": self.scope}
        return context.principal.has(self.scope)


class CanReadReports(_ScopePermission):
    scope = "reports:read"


class CanExportReports(_ScopePermission):
    scope = "reports:export"
