"""The metrics of every report, declared once each (`METRICS`).

Everything that names a metric is derived from this list: the GraphQL `Metrics` type and its
descriptions (`schema.metrics`), the statements over raw rows (`resolvers.metrics`), the figure
columns of the aggregate tables (`models.tables`), their deltas at ingestion and their rebuild
(`ingest.aggregates`), the statements over the aggregates (`resolvers.aggregates`), the CSV
columns (`resolvers.export`) and the benchmark's queries.

A metric counts over one kind of rows: the conversations that STARTED in a bucket (local day of
`started_at`) or the messages SENT in it (`sent_at`), both matching the report's filter and row.
It is one of five kinds:

- COUNT: how many of the rows meet `when` (every row when None). Aggregated as one figure column
  with the metric's name, to which each row adds 1 or 0. A COUNT of messages by `statuses`
  counts the outbound messages holding one of these delivery statuses now: ingestion moves the
  figure when a status arrives for a message already counted (`ingest.aggregates`).
- AVERAGE: the mean of `value` over the rows where it is not null (null when there is none).
  Aggregated as two figure columns, `total` (the sum of the values) and `count` (how many there
  are); `count` may be a COUNT metric's column when that metric counts exactly the rows whose
  value is not null (closed conversations have a duration), else it is a column of its own.
  With a `weight`, a row holds `weight` values (0, 1 or more) whose sum is `value`: the mean
  is sum(value) / sum(weight) (slaHitPercent: up to two service-level targets per
  conversation).
- DISTINCT: how many distinct values `value` takes. Distinct counts do not add up across cells:
  always from the raw rows.
- PERCENTILE: the continuous percentile `fraction` of `value` over the rows where it is not null,
  with linear interpolation between the closest ranks (PostgreSQL's `percentile_cont`: the
  median of 60, 120, 300, 900 is 210); null when there is none. From the raw rows.
- DISTRIBUTION: how many rows fall in each of `bins` (always all of them, in order), by
  `value`: a row whose value is null is in none. Aggregated as one figure column per bin,
  `<columns>_<bin suffix>` (`frt_le_60`), like a COUNT each; they are the CSV columns too.

A new summable metric is one declaration here plus a migration that adds (and fills) its figure
columns in the aggregate tables and the record of each conversation (`aggregated_conversation`).
"""

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Integer,
    Table,
    and_,
    case,
    false,
    func,
    or_,
    true,
)
from sqlalchemy.types import TypeEngine

from models.calendar import integer
from models.enums import Direction, Source


class Rows(Enum):
    """What a metric counts: conversations by their start, or messages by when they were sent."""

    CONVERSATIONS = "conversation"
    MESSAGES = "message"


class Kind(Enum):
    COUNT = "count"
    AVERAGE = "average"
    DISTINCT = "distinct"
    PERCENTILE = "percentile"
    DISTRIBUTION = "distribution"


Expression = Callable[[Table], ColumnElement[Any]]  # over the `conversation` or `message` table


@dataclass(frozen=True)
class Bin:
    """One bin of a distribution: the values it holds, the figure column's suffix and the key
    the GraphQL item shows for it."""

    suffix: str  # `le_60`: the figure column is `<columns>_<suffix>`
    key: int | None  # `upToSeconds` 60, or a rating; None: no upper bound
    holds: Callable[[ColumnElement[Any]], ColumnElement[bool]]  # over the (non-null) value


@dataclass(frozen=True)
class Bins:
    """The bins of a distribution, and the GraphQL type of one of its items."""

    type_name: str  # `DurationBucket`
    description: str
    key: str  # the python name of the item's key field (`up_to_seconds`)
    key_description: str
    bins: tuple[Bin, ...]

    @property
    def key_type(self) -> Any:
        return int | None if any(one.key is None for one in self.bins) else int


def _up_to(bounds: tuple[int, ...]) -> tuple[Bin, ...]:
    """A value is in the first bin whose bound is >= it; the last bin has no bound."""
    bins, lower = [], None
    for bound in bounds:
        bins.append(Bin(f"le_{bound}", bound, _between(lower, bound)))
        lower = bound
    return (*bins, Bin(f"gt_{bounds[-1]}", None, _between(lower, None)))


def _between(
    lower: int | None, upper: int | None
) -> Callable[[ColumnElement[Any]], ColumnElement[bool]]:
    def holds(value: ColumnElement[Any]) -> ColumnElement[bool]:
        above = value > integer(lower) if lower is not None else None
        below = value <= integer(upper) if upper is not None else None
        if above is None:
            assert below is not None
            return below
        return above if below is None else and_(above, below)

    return holds


def _equal_to(rating: int) -> Callable[[ColumnElement[Any]], ColumnElement[bool]]:
    return lambda value: value == integer(rating)


DURATION_BINS = Bins(
    "DurationBucket",
    "How many conversations have a time up to `upToSeconds` (and above the bucket before).",
    "up_to_seconds",
    "The bucket's upper bound in seconds, included; null: no upper bound (the last bucket).",
    _up_to((60, 300, 900, 1800, 3600, 14400, 28800, 86400, 259200)),
)
RATING_BINS = Bins(
    "RatingCount",
    "How many conversations have `rating` as their latest rating.",
    "rating",
    "The rating, 1 to 5.",
    tuple(Bin(str(rating), rating, _equal_to(rating)) for rating in range(1, 6)),
)


@dataclass(frozen=True)
class Metric:
    name: str  # python name; GraphQL camelCase, the CSV column as is
    description: str  # the GraphQL field's
    kind: Kind
    rows: Rows
    when: Expression | None = None  # COUNT: the rows counted; None: all of them
    value: Expression | None = None  # AVERAGE, DISTINCT and PERCENTILE: the value per row
    total: str = ""  # AVERAGE: the figure column of the sum of the values
    count: str = ""  # AVERAGE: the figure column of how many values there are
    total_type: type[TypeEngine[int]] = BigInteger  # AVERAGE: the sum column's SQL type
    fraction: tuple[int, int] = (1, 2)  # PERCENTILE: which one, as numerator and denominator
    bins: Bins | None = None  # DISTRIBUTION: its bins
    statuses: tuple[str, ...] = ()  # COUNT of messages: the outbound ones holding one of these
    columns: str = ""  # DISTRIBUTION: the prefix of its figure (and CSV) columns
    weight: Expression | None = None  # AVERAGE: how many values a row holds (None: 1 or 0)

    @property
    def counted(self) -> Expression | None:
        """COUNT: the condition on the rows it counts; None: every row."""
        return holding(self.statuses) if self.statuses else self.when

    @property
    def aggregated(self) -> bool:
        """Whether the aggregate tables answer it (DISTINCT and PERCENTILE: the raw rows)."""
        return self.kind in (Kind.COUNT, Kind.AVERAGE, Kind.DISTRIBUTION)

    @property
    def python_type(self) -> Any:
        """Its value in `resolvers.metrics.Metrics`: a distribution's is its bins' counts."""
        if self.kind is Kind.DISTRIBUTION:
            return tuple[int, ...]
        return float | None if self.kind in (Kind.AVERAGE, Kind.PERCENTILE) else int

    @property
    def default(self) -> int | tuple[int, ...] | None:
        """Its value with no rows to count."""
        if self.kind is Kind.DISTRIBUTION:
            return (0,) * len(self.bin_columns)
        return None if self.kind in (Kind.AVERAGE, Kind.PERCENTILE) else 0

    @property
    def bin_columns(self) -> tuple[str, ...]:
        """DISTRIBUTION: its figure columns, one per bin in order; () for the other kinds."""
        if self.bins is None:
            return ()
        return tuple(f"{self.columns}_{one.suffix}" for one in self.bins.bins)


@dataclass(frozen=True)
class Figure:
    """A column of the aggregate tables: the sum over a cell's rows of `contribution`."""

    name: str
    rows: Rows
    contribution: Expression  # per row, never null
    sql_type: type[TypeEngine[int]] = Integer
    statuses: tuple[str, ...] = ()  # the delivery statuses a message counts with; () any


def holding(statuses: tuple[str, ...]) -> Expression:
    """The outbound messages whose delivery status is one of `statuses`."""
    return lambda rows: and_(rows.c.direction == Direction.OUTBOUND, rows.c.status.in_(statuses))


def _one(_rows: Table) -> ColumnElement[int]:
    return integer(1)


def _inbound(rows: Table) -> ColumnElement[bool]:
    return rows.c.source == Source.INBOUND  # type: ignore[no-any-return]


def _duration(rows: Table) -> ColumnElement[Any]:
    return rows.c.closed_at - rows.c.started_at  # type: ignore[no-any-return]


def _first_response(rows: Table) -> ColumnElement[Any]:
    return rows.c.first_response_at - rows.c.first_inbound_at  # type: ignore[no-any-return]


def _first_response_business(rows: Table) -> ColumnElement[Any]:
    # Stored when the account has office hours (`ingest.service_levels`); else calendar time.
    return func.coalesce(rows.c.first_response_business_seconds, _first_response(rows))


def _duration_business(rows: Table) -> ColumnElement[Any]:
    return func.coalesce(rows.c.duration_business_seconds, _duration(rows))


def _targets_met(rows: Table) -> ColumnElement[Any]:
    """100 per service-level target the conversation met (0, 100 or 200)."""
    return sum(
        (case((rows.c[name] == true(), integer(100)), else_=integer(0)) for name in SLA_TARGETS),
        start=integer(0),
    )


def _targets_judged(rows: Table) -> ColumnElement[Any]:
    """How many of its service-level targets are met or breached (0, 1 or 2)."""
    return sum(
        (case((rows.c[name].is_not(None), integer(1)), else_=integer(0)) for name in SLA_TARGETS),
        start=integer(0),
    )


# The conversation's columns holding each service-level target's outcome: true met, false
# breached, null neither (no target, nothing to measure, or still in time).
SLA_TARGETS = ("sla_first_response_met", "sla_resolution_met")


def sla_breached(rows: Table) -> ColumnElement[bool]:
    """Whether the conversation breached a service-level target (never null)."""
    return or_(*(func.coalesce(rows.c[name], true()) == false() for name in SLA_TARGETS))


METRICS: tuple[Metric, ...] = (
    Metric(
        "conversations",
        "Conversations that started in the bucket and match the filter.",
        Kind.COUNT,
        Rows.CONVERSATIONS,
    ),
    Metric(
        "inbound_conversations",
        "Of those, the conversations started by the contact (source INBOUND).",
        Kind.COUNT,
        Rows.CONVERSATIONS,
        when=_inbound,
    ),
    Metric(
        "distinct_contacts",
        "Distinct contacts of those conversations; de-duplicated over the whole bucket or "
        "range, so totals are not the sum of the days.",
        Kind.DISTINCT,
        Rows.CONVERSATIONS,
        value=lambda rows: rows.c.contact_id,
    ),
    Metric(
        "messages",
        "Messages sent during the bucket (both directions) in conversations that match the "
        "filter and the row, including conversations started earlier.",
        Kind.COUNT,
        Rows.MESSAGES,
    ),
    Metric(
        "inbound_messages",
        "Of those messages, the ones sent by the contact.",
        Kind.COUNT,
        Rows.MESSAGES,
        when=lambda rows: rows.c.direction == Direction.INBOUND,
    ),
    Metric(
        "outbound_messages",
        "Of those messages, the ones sent by the business (agents and automations).",
        Kind.COUNT,
        Rows.MESSAGES,
        when=lambda rows: rows.c.direction == Direction.OUTBOUND,
    ),
    Metric(
        "closed_conversations",
        "Conversations started in the bucket that are closed (by an agent or automatically).",
        Kind.COUNT,
        Rows.CONVERSATIONS,
        when=lambda rows: rows.c.closed_at.is_not(None),
    ),
    Metric(
        "avg_duration_seconds",
        "Average of closedAt - startedAt over the closed conversations started in the bucket, "
        "in seconds; null when none is closed.",
        Kind.AVERAGE,
        Rows.CONVERSATIONS,
        value=_duration,
        total="duration_sum",
        count="closed_conversations",
    ),
    Metric(
        "avg_first_response_seconds",
        "Average time from the contact's first message to the first reply of a human agent "
        "after it (automation messages are not replies), over the conversations started in "
        "the bucket that have both; unanswered ones are left out; null when none.",
        Kind.AVERAGE,
        Rows.CONVERSATIONS,
        value=_first_response,
        total="first_response_sum",
        count="first_response_count",
    ),
    Metric(
        "avg_rating",
        "Average of the latest rating (1 to 5) of the rated conversations started in the "
        "bucket; null when none is rated.",
        Kind.AVERAGE,
        Rows.CONVERSATIONS,
        value=lambda rows: rows.c.rating,
        total="rating_sum",
        count="rated_conversations",
        total_type=Integer,
    ),
    Metric(
        "rated_conversations",
        "Conversations started in the bucket that have a rating.",
        Kind.COUNT,
        Rows.CONVERSATIONS,
        when=lambda rows: rows.c.rating.is_not(None),
    ),
    Metric(
        "avg_messages_per_conversation",
        "Average number of messages (both directions) of the conversations started in the "
        "bucket: all the messages each holds, whenever sent; null when none started.",
        Kind.AVERAGE,
        Rows.CONVERSATIONS,
        value=lambda rows: rows.c.message_count,
        total="message_count_sum",
        count="conversations",
    ),
    Metric(
        "median_first_response_seconds",
        "Median of the first response times avgFirstResponseSeconds averages (continuous: "
        "between the two middle values for an even count); null when none.",
        Kind.PERCENTILE,
        Rows.CONVERSATIONS,
        value=_first_response,
    ),
    Metric(
        "p90_first_response_seconds",
        "90th percentile of those first response times (continuous, with linear interpolation "
        "between the closest ranks, as PostgreSQL's percentile_cont); null when none.",
        Kind.PERCENTILE,
        Rows.CONVERSATIONS,
        value=_first_response,
        fraction=(9, 10),
    ),
    Metric(
        "median_duration_seconds",
        "Median of the durations avgDurationSeconds averages (closed conversations started in "
        "the bucket); null when none is closed.",
        Kind.PERCENTILE,
        Rows.CONVERSATIONS,
        value=_duration,
    ),
    Metric(
        "p90_duration_seconds",
        "90th percentile of those durations (continuous, as percentile_cont); null when none.",
        Kind.PERCENTILE,
        Rows.CONVERSATIONS,
        value=_duration,
        fraction=(9, 10),
    ),
    Metric(
        "csat_percent",
        "Customer satisfaction: the share of the rated conversations started in the bucket "
        "whose latest rating is 4 or 5, times 100; null when none is rated.",
        Kind.AVERAGE,
        Rows.CONVERSATIONS,
        value=lambda rows: case(
            (rows.c.rating >= integer(4), integer(100)),
            (rows.c.rating.is_not(None), integer(0)),
        ),
        total="csat_points",  # 100 per conversation rated 4 or 5
        count="rated_conversations",
        total_type=Integer,
    ),
    Metric(
        "delivered_messages",
        "Of the outbound messages sent during the bucket, those WhatsApp reports delivered, "
        "read or played: the status each holds now (it never moves backwards; failed wins). "
        "A message with no status yet counts in none of the delivery figures.",
        Kind.COUNT,
        Rows.MESSAGES,
        statuses=("delivered", "read", "played"),
    ),
    Metric(
        "read_messages",
        "Of those outbound messages, the ones read (or played, for audio).",
        Kind.COUNT,
        Rows.MESSAGES,
        statuses=("read", "played"),
    ),
    Metric(
        "failed_messages",
        "Of those outbound messages, the ones WhatsApp failed to deliver (summaryReport's "
        "failureReasons says why).",
        Kind.COUNT,
        Rows.MESSAGES,
        statuses=("failed",),
    ),
    Metric(
        "first_response_distribution",
        "The first response times avgFirstResponseSeconds averages, counted in ten buckets "
        "(up to 60 s, 5 min, 15 min, 30 min, 1 h, 4 h, 8 h, 24 h, 72 h, and more), always all "
        "ten in that order; a time lands in the first bucket whose bound is >= it.",
        Kind.DISTRIBUTION,
        Rows.CONVERSATIONS,
        value=_first_response,
        bins=DURATION_BINS,
        columns="frt",
    ),
    Metric(
        "duration_distribution",
        "The durations avgDurationSeconds averages (closed conversations), in the same ten "
        "buckets as firstResponseDistribution.",
        Kind.DISTRIBUTION,
        Rows.CONVERSATIONS,
        value=_duration,
        bins=DURATION_BINS,
        columns="duration",
    ),
    Metric(
        "rating_distribution",
        "The rated conversations by their latest rating, 1 to 5 in that order, always all five.",
        Kind.DISTRIBUTION,
        Rows.CONVERSATIONS,
        value=lambda rows: rows.c.rating,
        bins=RATING_BINS,
        columns="rating",
    ),
    Metric(
        "avg_first_response_business_seconds",
        "Average first response time counting only office hours (the account's, in its zone, "
        "exact across daylight-saving changes), over the conversations "
        "avgFirstResponseSeconds averages; equal to it when the account has no office hours; "
        "null when none.",
        Kind.AVERAGE,
        Rows.CONVERSATIONS,
        value=_first_response_business,
        total="first_response_business_sum",
        count="first_response_count",
    ),
    Metric(
        "median_first_response_business_seconds",
        "Median of those office-hours first response times (continuous, as "
        "medianFirstResponseSeconds); null when none.",
        Kind.PERCENTILE,
        Rows.CONVERSATIONS,
        value=_first_response_business,
    ),
    Metric(
        "avg_duration_business_seconds",
        "Average duration counting only office hours (the seconds of startedAt..closedAt "
        "inside them), over the closed conversations avgDurationSeconds averages; null when "
        "none is closed.",
        Kind.AVERAGE,
        Rows.CONVERSATIONS,
        value=_duration_business,
        total="duration_business_sum",
        count="closed_conversations",
    ),
    Metric(
        "started_outside_office_hours",
        "Conversations started in the bucket at an instant outside the account's office hours "
        "(0 when it has none: always open).",
        Kind.COUNT,
        Rows.CONVERSATIONS,
        when=lambda rows: rows.c.started_outside_office_hours == true(),
    ),
    Metric(
        "sla_first_response_met",
        "Conversations started in the bucket whose first response came by its service-level "
        "deadline (firstResponseDueAt: the contact's first message + the account's target, in "
        "office hours or calendar time as set).",
        Kind.COUNT,
        Rows.CONVERSATIONS,
        when=lambda rows: rows.c.sla_first_response_met == true(),
    ),
    Metric(
        "sla_first_response_breached",
        "Those answered after the deadline, or still unanswered once it has passed (a "
        "conversation still in time counts as neither).",
        Kind.COUNT,
        Rows.CONVERSATIONS,
        when=lambda rows: rows.c.sla_first_response_met == false(),
    ),
    Metric(
        "sla_resolution_met",
        "Conversations started in the bucket closed by their resolution deadline (startedAt + "
        "the account's resolution target).",
        Kind.COUNT,
        Rows.CONVERSATIONS,
        when=lambda rows: rows.c.sla_resolution_met == true(),
    ),
    Metric(
        "sla_resolution_breached",
        "Those closed after the deadline, or still open once it has passed.",
        Kind.COUNT,
        Rows.CONVERSATIONS,
        when=lambda rows: rows.c.sla_resolution_met == false(),
    ),
    Metric(
        "sla_hit_percent",
        "Targets met / (met + breached) over both service-level targets, times 100; null when "
        "none is met or breached.",
        Kind.AVERAGE,
        Rows.CONVERSATIONS,
        value=_targets_met,
        total="sla_points",  # 100 per target met
        count="sla_targets",  # targets met or breached
        total_type=Integer,
        weight=_targets_judged,
    ),
    Metric(
        "window_missed_conversations",
        "Conversations started in the bucket in which a contact's message got no reply from the "
        "business (agent or automation) within 24 hours, once those 24 hours have passed: the "
        "customer-service window closed on them (a reply at 23 h 59 min is in time).",
        Kind.COUNT,
        Rows.CONVERSATIONS,
        when=lambda rows: rows.c.window_missed == true(),
    ),
)

BY_NAME = {metric.name: metric for metric in METRICS}
NAMES = tuple(BY_NAME)


def _flag(condition: ColumnElement[bool]) -> ColumnElement[int]:
    return case((condition, integer(1)), else_=integer(0))


def _count_figure(metric: Metric) -> Figure:
    when = metric.counted
    contribution: Expression = _one if when is None else lambda rows: _flag(when(rows))
    return Figure(metric.name, metric.rows, contribution, statuses=metric.statuses)


def _average_figures(metric: Metric, counted: dict[str, Figure]) -> list[Figure]:
    value = metric.value
    assert value is not None, metric.name
    figures = [
        Figure(
            metric.total,
            metric.rows,
            lambda rows: func.coalesce(value(rows), integer(0)),
            metric.total_type,
        )
    ]
    weight = metric.weight
    if weight is not None:
        figures.append(Figure(metric.count, metric.rows, weight))
    elif metric.count not in counted:
        figures.append(
            Figure(metric.count, metric.rows, lambda rows: _flag(value(rows).is_not(None)))
        )
    return figures


def _bin_figures(metric: Metric) -> list[Figure]:
    value, bins = metric.value, metric.bins
    assert value is not None and bins is not None, metric.name
    return [
        Figure(name, metric.rows, _holds(value, one))
        for name, one in zip(metric.bin_columns, bins.bins, strict=True)
    ]


def _holds(value: Expression, one: Bin) -> Expression:
    # A null value holds in no bin: its comparisons are null, CASE takes the ELSE.
    return lambda rows: _flag(one.holds(value(rows)))


def _figures() -> tuple[Figure, ...]:
    counted = {
        metric.name: _count_figure(metric) for metric in METRICS if metric.kind is Kind.COUNT
    }
    found: dict[str, Figure] = {}
    for metric in METRICS:
        if metric.kind is Kind.COUNT:
            found[metric.name] = counted[metric.name]
        elif metric.kind is Kind.AVERAGE:
            for figure in _average_figures(metric, counted):
                found.setdefault(figure.name, figure)
        elif metric.kind is Kind.DISTRIBUTION:
            found.update((figure.name, figure) for figure in _bin_figures(metric))
    # A count column shared with a COUNT metric comes first, as that metric is declared.
    return tuple(found.values())


FIGURES: tuple[Figure, ...] = _figures()
CONVERSATION_FIGURES = tuple(f for f in FIGURES if f.rows is Rows.CONVERSATIONS)
MESSAGE_FIGURES = tuple(f for f in FIGURES if f.rows is Rows.MESSAGES)
