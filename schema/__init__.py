"""The Strawberry schema: each module contributes its root fields, merged here."""

from collections.abc import Sequence
from typing import Any

import strawberry
from strawberry.extensions import DisableIntrospection, SchemaExtension
from strawberry.tools import merge_types

from schema.ads import AdQuery
from schema.agents import AgentQuery
from schema.details import DetailsQuery
from schema.entities import EntityQuery
from schema.errors import ErrorCodes
from schema.export import ExportMutation
from schema.introspection import HideSuggestions
from schema.limits import QueryLimits, limit_extensions, paced_execution
from schema.office_hours import OfficeHoursQuery
from schema.scalars import SCALAR_OVERRIDES
from schema.summary import SummaryQuery
from schema.tags import TagQuery
from schema.widget import WidgetQuery

QUERY_TYPES: tuple[type, ...] = (
    EntityQuery,
    SummaryQuery,
    AgentQuery,
    TagQuery,
    DetailsQuery,
    WidgetQuery,
    OfficeHoursQuery,
    AdQuery,
)
MUTATION_TYPES: tuple[type, ...] = (ExportMutation,)


def build_schema(
    limits: QueryLimits = QueryLimits(),
    introspection: bool = True,
    observers: Sequence[type[SchemaExtension]] = (),
) -> strawberry.Schema:
    """The schema with its query limits; without introspection when GraphiQL is off.
    `observers`: extensions that watch each operation (the web layer's metrics), placed first:
    extensions unwind in reverse, so they see the coded errors."""
    query = merge_types("Query", QUERY_TYPES)
    mutation = merge_types("Mutation", MUTATION_TYPES) if MUTATION_TYPES else None
    extensions: list[Any] = [*observers, ErrorCodes, *limit_extensions(limits)]
    if not introspection:
        extensions += [DisableIntrospection, HideSuggestions]
    return strawberry.Schema(
        query=query,
        mutation=mutation,
        scalar_overrides=SCALAR_OVERRIDES,  # type: ignore[arg-type]
        extensions=extensions,
        execution_context_class=paced_execution(limits),
    )


schema = build_schema()
