"""Operations: request ids, one JSON access-log line per request, and Prometheus metrics.

Each app owns a `Metrics` (its own `CollectorRegistry`, so tests and apps never collide). The
helpers other layers call (`count_ingested`, `count_autoclose_run`) find
the current app's metrics in a context variable that the middleware sets for every request and
the lifespan sets for its background tasks; outside both (CLI, unit tests) they do nothing.
"""

import logging
import os
import random
import re
import secrets
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from pythonjsonlogger.core import RESERVED_ATTRS
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import QueuePool
from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from strawberry.extensions import SchemaExtension

from ingest.writer import Fold, GroupWriter
from models.settings import Settings
from models.timing import current_report

access_log = logging.getLogger("wareports.access")
log = logging.getLogger("wareports.errors")

REQUEST_ID_HEADER = "X-Request-ID"
# An incoming id is kept only if it cannot break a log line or a header, else one is made.
SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:=+/-]{0,127}")
OPERATION_NAME = re.compile(r"[_A-Za-z][_0-9A-Za-z]{0,99}")
MAX_OPERATION_LABELS = 200  # distinct GraphQL operation names per process; then "other"
UNMATCHED_ROUTE = "unmatched"
MULTIPROCESS_DIR = "PROMETHEUS_MULTIPROC_DIR"
QUIET_LOGGERS = ("aiosqlite", "asyncpg", "sqlalchemy", "httpx", "httpcore")

SQL_STARTED = "wareports_sql_started"  # connection.info key: when its statement began
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class Metrics:
    """The service's Prometheus metrics, registered on a registry of their own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.engine: AsyncEngine | None = None  # set by the lifespan, read by the pool gauge
        self._operations: set[str] = set()
        self._children: dict[tuple[str, ...], Any] = {}
        self.max_operations = MAX_OPERATION_LABELS
        registry = self.registry
        self.http_requests = Counter(
            "wareports_http_requests",
            "HTTP requests by method, route template and status.",
            ["method", "route", "status"],
            registry=registry,
        )
        self.http_duration = Histogram(
            "wareports_http_request_duration_seconds",
            "HTTP request latency by method and route template.",
            ["method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.graphql_operations = Counter(
            "wareports_graphql_operations",
            "GraphQL operations by operation name and outcome (ok, or the first error code).",
            ["operation", "outcome"],
            registry=registry,
        )
        self.graphql_duration = Histogram(
            "wareports_graphql_operation_duration_seconds",
            "GraphQL operation time (parse, validate, execute) by operation name.",
            ["operation"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.report_sql = Histogram(
            "wareports_report_sql_duration_seconds",
            "Time of each SQL statement a report runs, by report (see watch_sql).",
            ["report"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.ingested = Counter(
            "wareports_ingested",
            "Ingested items by kind (webhook, event, click) and outcome.",
            ["kind", "outcome"],
            registry=registry,
        )
        self.webhook_fields = Counter(
            "wareports_webhook_fields_ignored",
            "Changes of webhook fields answered 200 and not stored (calls, user_preferences, "
            "account_update, ...), by field; an unexpected name counts as `other`.",
            ["field"],
            registry=registry,
        )
        self.autoclose_runs = Counter(
            "wareports_autoclose_runs",
            "Auto-close passes by outcome (ok, failed).",
            ["outcome"],
            registry=registry,
        )
        self.autoclosed = Counter(
            "wareports_autoclosed_conversations",
            "Conversations closed by the auto-close job.",
            registry=registry,
        )
        self.ingest_transaction_items = Histogram(
            "wareports_ingest_transaction_items",
            "Items (webhook messages and statuses, events, clicks) per ingestion transaction.",
            buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000),
            registry=registry,
        )
        self.ingest_fold_seconds = Histogram(
            "wareports_ingest_fold_seconds",
            "Time to fold and commit one ingestion transaction, by outcome (committed, split).",
            ["outcome"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.ingest_refused_busy = Counter(
            "wareports_ingest_refused_busy",
            "Ingestion requests answered 503 because the writer's queue was full.",
            registry=registry,
        )
        self.writer: GroupWriter | None = None  # set by the lifespan, read by the queue gauge
        registry.register(PoolCollector(self))
        registry.register(QueueCollector(self))

    def watch_sql(self, engine: AsyncEngine) -> None:
        """Time every statement `engine` runs for a report (`models.timing.report_part`) into
        `wareports_report_sql_duration_seconds`, labelled with the report."""

        def started(connection: Any, *_args: Any) -> None:
            connection.info[SQL_STARTED] = time.perf_counter()

        def finished(connection: Any, *_args: Any) -> None:
            report = current_report()
            began = connection.info.pop(SQL_STARTED, None)
            if report is not None and began is not None:
                self.report_sql.labels(report).observe(time.perf_counter() - began)

        event.listen(engine.sync_engine, "before_cursor_execute", started)
        event.listen(engine.sync_engine, "after_cursor_execute", finished)

    def child(self, metric: Counter | Histogram, *labels: str) -> Any:
        """`metric.labels(*labels)`, remembered: the per-request counters skip the library's
        lock and label checks after the first time (label values are bounded by the callers)."""
        key = (metric._name, *labels)
        found = self._children.get(key)
        if found is None:
            found = self._children[key] = metric.labels(*labels)
        return found

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        self.child(self.http_requests, method, route, str(status)).inc()
        self.child(self.http_duration, method, route).observe(seconds)

    def observe_fold(self, fold: Fold) -> None:
        self.ingest_transaction_items.observe(fold.items)
        self.ingest_fold_seconds.labels(fold.outcome).observe(fold.seconds)

    def operation_label(self, name: str | None) -> str:
        """A bounded label for a client-chosen operation name."""
        if not name:
            return "anonymous"
        if not OPERATION_NAME.fullmatch(name):
            return "invalid"
        if name not in self._operations:
            if len(self._operations) >= self.max_operations:
                return "other"
            self._operations.add(name)
        return name

    def exposition(self) -> bytes:
        """The text format of every metric; with several workers, all of them summed."""
        if MULTIPROCESS_DIR not in os.environ:
            return generate_latest(self.registry)
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
        registry.register(PoolCollector(self, pid=str(os.getpid())))
        registry.register(QueueCollector(self))
        return generate_latest(registry)


class PoolCollector(Collector):
    """The engine's connection pool, read when scraped (checked out, idle, overflow)."""

    def __init__(self, metrics: Metrics, pid: str | None = None) -> None:
        self.metrics = metrics
        self.pid = pid

    def collect(self) -> Iterator[Metric]:
        pool = self.metrics.engine.pool if self.metrics.engine is not None else None
        labels = ["state"] + (["pid"] if self.pid else [])
        family = GaugeMetricFamily(
            "wareports_db_pool_connections",
            "Database connections of this process's pool by state.",
            labels=labels,
        )
        if isinstance(pool, QueuePool):
            for state, value in (
                ("checked_out", pool.checkedout()),
                ("idle", pool.checkedin()),
                ("overflow", max(0, pool.overflow())),
                ("size", pool.size()),
            ):
                family.add_metric([state] + ([self.pid] if self.pid else []), value)
        yield family


class QueueCollector(Collector):
    """The ingestion writer's queue depth, read when scraped."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(
            "wareports_ingest_queue_items",
            "Ingestion items waiting for this process's writer.",
        )
        writer = self.metrics.writer
        family.add_metric([], writer.depth if writer is not None else 0)
        yield family


_current: ContextVar[Metrics | None] = ContextVar("wareports_metrics", default=None)


def bind_metrics(metrics: Metrics) -> None:
    """Make `metrics` the current app's for this task and the tasks it starts."""
    _current.set(metrics)


def current_metrics() -> Metrics | None:
    return _current.get()


# -- helpers for the other layers ---------------------------------------------------------------


def count_ingested(kind: str, outcome: str, amount: int = 1) -> None:
    """Count ingested items: kind `webhook` | `event` | `click`; outcome e.g. `stored`,
    `duplicate`, `invalid`, `unauthorized`, `unknown_number`, `unknown_button`."""
    metrics = _current.get()
    if metrics is not None and amount > 0:
        metrics.child(metrics.ingested, kind, outcome).inc(amount)


def count_ignored_fields(fields: dict[str, int]) -> None:
    """Count the webhook changes of fields nothing stores, by field (`ingest.whatsapp.parse`)."""
    metrics = _current.get()
    if metrics is not None:
        for name, amount in fields.items():
            metrics.child(metrics.webhook_fields, name).inc(amount)


def count_autoclose_run(outcome: str, closed: int = 0) -> None:
    """Count one auto-close pass (`ok` or `failed`) and the conversations it closed."""
    metrics = _current.get()
    if metrics is not None:
        metrics.autoclose_runs.labels(outcome).inc()
        if closed > 0:
            metrics.autoclosed.inc(closed)


# -- GraphQL --------------------------------------------------------------------------------------


class OperationMetrics(SchemaExtension):
    """Counts GraphQL operations by name and outcome and tells the access log the name."""

    def on_operation(self) -> Iterator[None]:
        started = time.perf_counter()
        outcome = "internal_server_error"
        try:
            yield
            outcome = self._outcome()
        finally:
            self._record(outcome, time.perf_counter() - started)

    def _outcome(self) -> str:
        result = self.execution_context.result
        if result is None or not result.errors:
            return "ok"
        code = (result.errors[0].extensions or {}).get("code", "error")
        return str(code).lower()

    def _record(self, outcome: str, seconds: float) -> None:
        name = self.execution_context.operation_name
        request = getattr(self.execution_context.context, "request", None)
        if request is not None and name and OPERATION_NAME.fullmatch(name):
            request.state.graphql_operation = name
        metrics = _current.get()
        if metrics is not None:
            label = metrics.operation_label(name)
            metrics.graphql_operations.labels(label, outcome).inc()
            metrics.graphql_duration.labels(label).observe(seconds)


# -- HTTP -----------------------------------------------------------------------------------------


def request_id_of(scope: Scope) -> str:
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id":
            incoming = value.decode("latin-1")
            if SANE_REQUEST_ID.fullmatch(incoming):
                return incoming
            break
    # Unique, not secret: the process's seeded generator, without a system call per request.
    return f"{random.getrandbits(128):032x}"


CAPABILITY_PREFIXES = ("/exports/",)


def _redacted(path: str) -> str:
    for prefix in CAPABILITY_PREFIXES:
        if path.startswith(prefix):
            return prefix + "{redacted}"
    return path


def route_of(scope: Scope) -> str | None:
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else None


class ObservabilityMiddleware:
    """The outermost layer: request id in, header out; metrics; one access-log line; and a
    coded 500 (with the request id) for an exception nothing else handled."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = request_id_of(scope)
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        bound = _current.set(self.metrics)
        started = time.perf_counter()
        status = 500
        response_started = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                status, response_started = message["status"], True
                MutableHeaders(scope=message)[REQUEST_ID_HEADER] = request_id
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            log.exception("unhandled error", extra={"request_id": request_id})
            if response_started:
                raise
            await internal_error(request_id)(scope, receive, send_with_id)
        finally:
            self._record(scope, state, status, time.perf_counter() - started)
            _current.reset(bound)

    def _record(self, scope: Scope, state: dict[str, Any], status: int, seconds: float) -> None:
        route = route_of(scope)
        method = scope["method"]
        self.metrics.observe_request(method, route or UNMATCHED_ROUTE, status, seconds)
        level = logging.ERROR if status >= 500 else logging.INFO
        if not access_log.isEnabledFor(level):
            return
        principal = state.get("principal")
        # The route template, never the raw path of a matched route: paths like
        # /exports/{token} carry capabilities, and so do the unmatched paths under them
        # (`/exports/<token>/` redirected, `/exports/<token>/x` not found). The query string is
        # never logged.
        path = route or _redacted(scope["path"])[:200]
        access_log.log(
            level,
            "%s %s %s",
            method,
            path,
            status,
            extra={
                "request_id": state["request_id"],
                "method": method,
                "path": path,
                "status": status,
                "duration_ms": round(seconds * 1000, 2),
                "account_id": getattr(principal, "account_id", None),
                "operation": state.get("graphql_operation"),
            },
        )


def internal_error(request_id: str) -> JSONResponse:
    return JSONResponse(
        {
            "errors": [
                {
                    "message": "Internal server error",
                    "extensions": {"code": "INTERNAL_SERVER_ERROR", "requestId": request_id},
                }
            ]
        },
        status_code=500,
    )


async def metrics_endpoint(request: Request) -> Response:
    """`/metrics` as WAREPORTS_METRICS allows: off (404), open, or `token:<secret>` (Bearer)."""
    settings: Settings = request.app.state.settings
    mode = settings.metrics
    if mode == "off":
        return PlainTextResponse("Not Found", status_code=404)
    if mode.startswith("token:"):
        expected = mode.removeprefix("token:").encode()
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not secrets.compare_digest(
            given.strip().encode(), expected
        ):
            return PlainTextResponse(
                "metrics need the bearer token of WAREPORTS_METRICS",
                status_code=401,
                headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
            )
    metrics: Metrics = request.app.state.metrics
    return Response(metrics.exposition(), media_type=CONTENT_TYPE_LATEST)


@contextmanager
def multiprocess_metrics(workers: int) -> Iterator[None]:
    """With several workers, each process writes its metrics to a shared directory and
    /metrics sums them all (prometheus-client's multiprocess mode); removed at exit."""
    if workers <= 1 or MULTIPROCESS_DIR in os.environ:
        yield
        return
    directory = tempfile.mkdtemp(prefix="wareports-metrics-")
    os.environ[MULTIPROCESS_DIR] = directory
    try:
        yield
    finally:
        os.environ.pop(MULTIPROCESS_DIR, None)
        shutil.rmtree(directory, ignore_errors=True)


# -- logging ---------------------------------------------------------------------------------


def logging_config(settings: Settings) -> dict[str, Any]:
    """The `logging.config.dictConfig` of the server: JSON lines on stdout (or plain text),
    our access log instead of uvicorn's (which would print query strings, where tokens live)."""
    formatter = (
        {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(process)d %(message)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
            "timestamp": False,
            # uvicorn adds an ANSI-coloured copy of its messages: not for JSON lines
            "reserved_attrs": [*RESERVED_ATTRS, "color_message"],
        }
        if settings.log_format == "json"
        else {"format": "%(asctime)s %(levelname)s %(name)s[%(process)d] %(message)s"}
    )
    level = settings.log_level.upper()
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"default": formatter},
        "handlers": {
            "stdout": {
                "class": "logging.StreamHandler",
                "formatter": "default",
                "stream": "ext://sys.stdout",
            }
        },
        "root": {"handlers": ["stdout"], "level": level},
        "loggers": {
            "uvicorn": {"handlers": [], "level": level, "propagate": True},
            "uvicorn.error": {"handlers": [], "level": level, "propagate": True},
            "uvicorn.access": {"handlers": [], "level": "WARNING", "propagate": False},
            # At DEBUG these print SQL parameters (token hashes, app secrets): never below INFO.
            **{name: {"level": "WARNING"} for name in QUIET_LOGGERS},
        },
    }
