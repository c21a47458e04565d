"""The Starlette application factory and its lifespan (engine opened, then disposed)."""

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from api import buttons, events, exports, security, webhooks
from api.graphql import GraphQLEndpoint
from api.ratelimit import RateLimiter
from api.settings import Settings, get_settings
from ingest.autoclose import run_periodically
from models.db import create_engine


async def healthz(_request: Request) -> JSONResponse:
    """The process is alive (readiness is /readyz)."""
    return JSONResponse({"status": "ok"})


def create_app(settings: Settings | None = None) -> Starlette:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        engine = create_engine(settings.database_url)
        app.state.engine = engine
        # Built inside the running loop: the in-memory store schedules its expiry there.
        app.state.rate_limiter = RateLimiter.from_settings(settings)
        autoclose = asyncio.create_task(
            run_periodically(engine, settings.autoclose_interval_seconds), name="autoclose"
        )
        try:
            yield
        finally:
            autoclose.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await autoclose
            await engine.dispose()

    graphql = GraphQLEndpoint(settings)
    routes = [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/graphql", graphql, methods=["GET", "POST"]),
        *webhooks.routes,
        *events.routes,
        *buttons.routes,
        *exports.routes,
    ]
    app = Starlette(routes=routes, lifespan=lifespan, middleware=security.middleware(settings))
    app.state.settings = settings
    return app
