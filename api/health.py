"""`/healthz` (the process answers) and `/readyz` (the database answers, migrated to head)."""

import asyncio
import logging
from functools import lru_cache

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from models.migrate import current_revision, head_revision

log = logging.getLogger("wareports.health")

READINESS_TIMEOUT_SECONDS = 5.0


@lru_cache
def code_revision() -> str | None:
    """The head migration of this code (read once from the migration scripts)."""
    return head_revision()


async def healthz(_request: Request) -> JSONResponse:
    """The process is alive; says nothing of the database (that is /readyz)."""
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> JSONResponse:
    """Ready when the database answers within 5 s and its migrations are at this code's head,
    and so does the reports' replica when there is one (`WAREPORTS_READ_DATABASE_URL`);
    otherwise 503 with the reason, so a load balancer keeps traffic away."""
    engines: list[tuple[str, AsyncEngine]] = [("database", request.app.state.engine)]
    if request.app.state.read_engine is not request.app.state.engine:
        engines.append(("read replica", request.app.state.read_engine))
    revision = None
    for name, engine in engines:
        try:
            revision = await asyncio.wait_for(database_revision(engine), READINESS_TIMEOUT_SECONDS)
        except Exception as exc:  # any failure means "not ready"; the detail goes to the log
            log.warning("readiness: %s unreachable: %r", name, exc)
            reason = f"{name} unreachable ({type(exc).__name__})"
            return JSONResponse({"status": "unavailable", "reason": reason}, status_code=503)
        expected = code_revision()
        if revision != expected:
            reason = (
                f"{name} at migration {revision or 'none'}, code at {expected}: "
                "run `wareports migrate`"
                + (" and let the replica catch up" if name == "read replica" else "")
            )
            return JSONResponse({"status": "unavailable", "reason": reason}, status_code=503)
    return JSONResponse({"status": "ready", "migration": revision})


async def database_revision(engine: AsyncEngine) -> str | None:
    async with engine.connect() as connection:
        await connection.execute(text("SELECT 1"))
    return await current_revision(engine)


routes = [
    Route("/healthz", healthz, methods=["GET"]),
    Route("/readyz", readyz, methods=["GET"]),
]
