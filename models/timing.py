"""Which report the SQL running now is for: the label of the report SQL timing metric.

A report function is marked `@report_part("summary")`; while it runs (and the statements it
awaits), `current_report()` names it. The web layer times every statement of its engine and
files the time under that name (`api.observability.Metrics.watch_sql`); statements outside a
report (token look-ups, lists of agents) are not counted. A context variable: reports that
run at once, as sibling GraphQL fields do, each see their own.
"""

import functools
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")

_report: ContextVar[str | None] = ContextVar("wareports_report", default=None)


def current_report() -> str | None:
    return _report.get()


def report_part(
    name: str,
) -> Callable[[Callable[P, Awaitable[T]]], Callable[P, Awaitable[T]]]:
    """Mark a report function: the statements it runs are timed under `name`."""

    def mark(function: Callable[P, Awaitable[T]]) -> Callable[P, Awaitable[T]]:
        @functools.wraps(function)
        async def run(*args: P.args, **kwargs: P.kwargs) -> T:
            token = _report.set(name)
            try:
                return await function(*args, **kwargs)
            finally:
                _report.reset(token)

        return run

    return mark
