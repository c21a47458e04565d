"""The `Metrics` shape every report shares, the filter argument, and what a query selected."""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from enum import Enum
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import strawberry
from strawberry.types.nodes import FragmentSpread, InlineFragment, SelectedField, Selection
from strawberry.utils.str_converters import to_camel_case, to_snake_case

from models.metrics import METRICS, Bins, Metric
from resolvers import metrics as computed
from resolvers.filters import Filter, parse_filter
from schema.context import WareportsInfo
from schema.filters import ReportFilter, SecondsRange

PartT = TypeVar("PartT", bound=Enum)

METRICS_DESCRIPTION = (
    "The figures of a bucket or row; one shape and one computation for every grouping. "
    "Conversation figures count the conversations that STARTED in the bucket or row (local day "
    "of startedAt in the filter's zone) and match the filter. Message figures count the "
    "messages SENT during the bucket (or the range, for rows and totals) whose conversation "
    "matches the filter and the row, wherever that conversation started."
)


def _item_type(bins: Bins) -> Any:
    """The GraphQL type of one bin of a distribution: its key and how many conversations."""
    namespace: dict[str, Any] = {
        "__module__": __name__,
        "__annotations__": {bins.key: bins.key_type, "conversations": int},
        bins.key: strawberry.field(description=bins.key_description),
        "conversations": strawberry.field(description="Conversations in the bin."),
    }
    return strawberry.type(type(bins.type_name, (), namespace), description=bins.description)


ITEM_TYPES = {
    metric.bins.type_name: _item_type(metric.bins) for metric in METRICS if metric.bins is not None
}


def _graphql_value(metric: Metric, value: Any) -> Any:
    """A metric as its field answers it: a distribution's counts as its items, with their keys."""
    if metric.bins is None:
        return value
    item = ITEM_TYPES[metric.bins.type_name]
    return [
        item(**{metric.bins.key: one.key, "conversations": count})
        for one, count in zip(metric.bins.bins, value, strict=True)
    ]


def _graphql_type(metric: Metric) -> Any:
    if metric.bins is None:
        return metric.python_type
    item: Any = ITEM_TYPES[metric.bins.type_name]
    return list[item]  # type: ignore[valid-type]


def _metrics_type() -> Any:
    """The GraphQL type, one field per metric of `models.metrics`, in its order."""
    namespace: dict[str, Any] = {
        "__module__": __name__,
        "__annotations__": {metric.name: _graphql_type(metric) for metric in METRICS},
    }
    for metric in METRICS:
        namespace[metric.name] = strawberry.field(description=metric.description)

    def of(cls: Any, figures: computed.Metrics) -> Any:
        return cls(
            **{
                metric.name: _graphql_value(metric, getattr(figures, metric.name))
                for metric in METRICS
            }
        )

    namespace["of"] = classmethod(of)
    return strawberry.type(type("Metrics", (), namespace), description=METRICS_DESCRIPTION)


if TYPE_CHECKING:

    class Metrics:
        """(What mypy knows of the type made from the registry below.)"""

        def __init__(self, **values: Any) -> None: ...
        def __getattr__(self, name: str) -> Any: ...
        @classmethod
        def of(cls, figures: computed.Metrics) -> "Metrics": ...

else:
    Metrics = _metrics_type()


@strawberry.type(description="The local days a report covers, as its filter resolved them.")
class DateRange:
    from_: date = strawberry.field(name="from", description="First local day, inclusive.")
    to: date = strawberry.field(description="Last local day, inclusive.")
    timezone: str = strawberry.field(description="The IANA zone the days are local to.")

    @classmethod
    def of(cls, flt: Filter) -> "DateRange":
        return cls(from_=flt.first_day, to=flt.last_day, timezone=flt.timezone)


RANGE_DESCRIPTION = "The range the filter resolved to (its preset and shift applied)."


@strawberry.type(description="The metrics of one local day or ISO week of the range.")
class MetricsBucket:
    start: date = strawberry.field(
        description="First local day of the bucket: the day itself, or the Monday of the ISO "
        "week (the range's first day when the week starts before the range)."
    )
    metrics: Metrics = strawberry.field(description="The bucket's figures.")

    @classmethod
    def of(cls, bucket: computed.MetricsBucket) -> "MetricsBucket":
        return cls(start=bucket.start, metrics=Metrics.of(bucket.metrics))

    @classmethod
    def all(cls, buckets: Iterable[computed.MetricsBucket]) -> list["MetricsBucket"]:
        return [cls.of(bucket) for bucket in buckets]


FilterArgument = Annotated[
    ReportFilter,
    strawberry.argument(
        description="The local days from..to in the filter's zone, and the lists that select "
        "conversations (ANY inside a list, AND between lists)."
    ),
]


def report_filter(raw: ReportFilter, info: WareportsInfo) -> Filter:
    """The validated filter; zone defaults to the account's, range capped by the settings."""
    context = info.context
    return parse_filter(
        from_=raw.from_,
        to=raw.to,
        preset=raw.preset,
        shift=raw.shift,
        now=context.clock(),
        timezone=raw.timezone,
        contact_tags=raw.contact_tags,
        conversation_tags=raw.conversation_tags,
        agent_emails=raw.agent_emails,
        sources=raw.sources,
        weekdays=raw.weekdays,
        hours=raw.hours,
        first_response_seconds=_bounds(raw.first_response_seconds),
        duration_seconds=_bounds(raw.duration_seconds),
        ratings=raw.ratings,
        statuses=raw.statuses,
        answered=raw.answered,
        sla_breached=raw.sla_breached,
        buttons=raw.buttons,
        ad_source_ids=raw.ad_source_ids,
        account_timezone=context.principal.timezone,
        max_range_days=context.settings.max_range_days,
        use_aggregates=context.settings.report_aggregates,
    )


def _bounds(seconds: SecondsRange | None) -> tuple[int | None, int | None] | None:
    return None if seconds is None else (seconds.min, seconds.max)


@dataclass(frozen=True)
class Selected:
    """The fields a query selected below a field, fragments and aliases merged, so that a
    report computes only what is asked (names are the schema's camelCase names)."""

    fields: Mapping[str, "Selected"] = field(default_factory=dict)

    def __contains__(self, name: object) -> bool:
        return name in self.fields

    def __getitem__(self, name: str) -> "Selected":
        return self.fields.get(name, Selected())

    def parts(self, kind: type[PartT]) -> frozenset[PartT]:
        """The parts of a report (the members of `kind`, each valued its field's python name)
        whose fields the query selected."""
        return frozenset(part for part in kind if to_camel_case(part.value) in self)

    def halves(self, *metrics_fields: "Selected") -> frozenset[computed.Half]:
        """The Metrics statements needed to answer these `Metrics` selections."""
        names = {to_snake_case(name) for selected in metrics_fields for name in selected.fields}
        return computed.halves_for(names)


def selected(info: WareportsInfo) -> Selected:
    """What the query selected below the field being resolved."""
    return _merge(info.selected_fields)[info.field_name] if info.selected_fields else Selected()


def _merge(selections: Iterable[Selection]) -> Selected:
    found: dict[str, list[Selection]] = {}
    _collect(selections, found)
    return Selected({name: _merge(children) for name, children in found.items()})


def _collect(selections: Iterable[Selection], found: dict[str, list[Selection]]) -> None:
    for selection in selections:
        if isinstance(selection, SelectedField):
            found.setdefault(selection.name, []).extend(selection.selections)
        elif isinstance(selection, (FragmentSpread, InlineFragment)):
            _collect(selection.selections, found)
