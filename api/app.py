"""The Starlette application factory and its lifespan (engine opened, then disposed)."""

import asyncio
import contextlib
import gc
import logging
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Route

from api import buttons, events, exports, health, security, web, webhooks
from api.graphql import GraphQLEndpoint
from api.observability import (
    Metrics,
    ObservabilityMiddleware,
    bind_metrics,
    count_autoclose_run,
    metrics_endpoint,
)
from api.ratelimit import RateLimiter
from ingest import aggregates
from ingest.autoclose import run_periodically
from ingest.writer import GroupWriter
from models.db import create_engine, create_read_engine, create_writer_engine, now
from models.settings import Settings, get_settings


def create_app(settings: Settings | None = None, clock: Callable[[], int] = now) -> Starlette:
    """The service; `clock` (UTC epoch seconds) is what report presets call today."""
    settings = settings or get_settings()
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        engine = create_engine(settings.database_url)
        app.state.engine = engine
        metrics.engine = engine
        read_url = settings.read_database_url
        # Reports, entity queries and exports: on the replica when there is one (`readyz`
        # checks it too); authentication stays on the primary, so a revoked token is refused
        # at once whatever the replica's lag.
        app.state.read_engine = create_read_engine(read_url) if read_url else engine
        metrics.watch_sql(app.state.read_engine)
        bind_metrics(metrics)  # the background tasks started below count into this app
        # Built inside the running loop: the in-memory store schedules its expiry there.
        app.state.rate_limiter = RateLimiter.from_settings(settings)
        app.state.click_limiter = RateLimiter(
            settings.click_rate_limit, settings.redis_url, namespace="click"
        )
        writer_engine = create_writer_engine(settings.database_url)
        writer = GroupWriter(
            writer_engine,
            max_queued=settings.ingest_queue,
            max_group=settings.ingest_group,
            on_fold=metrics.observe_fold,
        )
        writer.start()
        app.state.writer = metrics.writer = writer
        app.state.recording_use = {}  # api.writing.record_use_later
        app.state.channels = webhooks.ChannelCache(engine)
        app.state.warm_up = await _warm_up(engine)
        autoclose = asyncio.create_task(
            run_periodically(
                engine, settings.autoclose_interval_seconds, count_autoclose_run, writer.submit
            ),
            name="autoclose",
        )
        try:
            yield
        finally:
            autoclose.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await autoclose
            await writer.close()  # what was acknowledged is committed; finish what is queued
            await writer_engine.dispose()
            if app.state.read_engine is not engine:
                await app.state.read_engine.dispose()
            await engine.dispose()

    graphql = GraphQLEndpoint(settings)
    routes = [
        *health.routes,
        Route("/metrics", metrics_endpoint, methods=["GET"]),
        Route("/graphql", graphql),  # any method: the endpoint answers 405 in GraphQL's shape
        *webhooks.routes,
        *events.routes,
        *buttons.routes,
        *exports.routes,
        *web.routes(settings),
    ]
    # Observability first: it wraps everything, so refusals and errors are counted and logged.
    middleware = [Middleware(ObservabilityMiddleware, metrics=metrics)]
    middleware += security.middleware(settings)
    app = Starlette(routes=routes, lifespan=lifespan, middleware=middleware)
    app.state.settings = settings
    app.state.clock = clock
    app.state.metrics = metrics
    return app


# Allocations between two young-generation collections (CPython's default is 700).
YOUNG_COLLECTION_ALLOCATIONS = 10_000


def create_served_app() -> Starlette:
    """`create_app` for `wareports serve`'s processes, with the cycle collector tuned for a
    server (`tune_collector`)."""
    app = create_app()
    tune_collector()
    return app


def tune_collector() -> None:
    """The cycle collector as a server wants it, once its app is built: what exists then
    (modules, schema, mappers: hundreds of thousands of objects) is frozen out of its full
    passes, and young collections run less often. Each request allocates many short-lived
    objects; with the defaults, collections were about a tenth of ingestion's CPU time
    (benchmarks/ingest_throughput.py), and a full pass over the whole heap could land in any
    large report's answer (`wareports bench` calls this too, to time what the server runs)."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_COLLECTION_ALLOCATIONS, middle, old)


async def _warm_up(engine: AsyncEngine) -> threading.Thread | None:
    """The ingestion statements of the accounts' zones compiling in a thread
    (`ingest.aggregates.warm_up`); a failure (a database not migrated yet) leaves them to be
    compiled when first used."""
    try:
        return await aggregates.warm_up(engine)
    except Exception:
        logging.getLogger(__name__).warning(
            "warming up the ingestion statements failed", exc_info=True
        )
        return None
