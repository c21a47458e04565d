"""The per-request context: caller, session and settings."""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import strawberry
from sqlmodel.ext.asyncio.session import AsyncSession
from starlette.requests import Request
from starlette.responses import Response
from strawberry.permission import BasePermission
from strawberry.types import Info

from models.db import now
from models.principal import Principal
from models.settings import Settings


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
