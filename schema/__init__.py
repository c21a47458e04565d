"""The Strawberry schema: each module contributes its root fields, merged here."""

import strawberry
from strawberry.tools import merge_types

from schema.entities import EntityQuery
from schema.errors import ErrorCodes
from schema.scalars import SCALAR_OVERRIDES

QUERY_TYPES: tuple[type, ...] = (EntityQuery,)
MUTATION_TYPES: tuple[type, ...] = ()


def build_schema() -> strawberry.Schema:
    query = merge_types("Query", QUERY_TYPES)
    mutation = merge_types("Mutation", MUTATION_TYPES) if MUTATION_TYPES else None
    return strawberry.Schema(
        query=query,
        mutation=mutation,
        scalar_overrides=SCALAR_OVERRIDES,  # type: ignore[arg-type]
        extensions=[ErrorCodes],
    )


schema = build_schema()
