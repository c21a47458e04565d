"""graphql-core's execution with plain leaves completed inline.

graphql-core completes every field of every object the same way: a path, a resolve info, the
resolver, then the value's completion by its type (about 7 us a field). Most of what a report
answers is plain leaves: a `Metrics` of a daily bucket, a row of a details page, each an
attribute of a ready object, an Int, Float, String, Boolean or a scalar. `InlineLeaves` reads
those attributes directly (`getattr`, exactly what Strawberry's default resolver of a field
without a resolver or field extension does) and completes the common values (an Int in range,
a finite Float, a str, a bool) as they are; every other field, and every leaf whose value is not
one of those (None for a non-null field, an exception, anything else to coerce), goes through
graphql-core's own `execute_field`, so the answer and its errors are what they would have been.
Which leaves are plain is decided once per selection (graphql-core memoizes the grouped fields
of a list's items, so a list of 500 rows plans once), and only when no schema extension hooks
the resolvers (a middleware must see every field).
"""

import math
from collections.abc import Callable
from typing import Any

from graphql import (
    GraphQLBoolean,
    GraphQLFloat,
    GraphQLInt,
    GraphQLObjectType,
    GraphQLString,
    get_nullable_type,
    is_leaf_type,
    is_non_null_type,
)
from graphql.pyutils import Path, Undefined, gather_with_cancel
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.types.field import StrawberryField

DEFINITION = "strawberry-definition"  # Strawberry's back reference on a GraphQL field
MIN_INT, MAX_INT = -(2**31), 2**31 - 1


def _int(value: Any) -> Any:
    return value if type(value) is int and MIN_INT <= value <= MAX_INT else Undefined


def _float(value: Any) -> Any:
    return value if type(value) is float and math.isfinite(value) else Undefined


def _str(value: Any) -> Any:
    return value if type(value) is str else Undefined


def _bool(value: Any) -> Any:
    return value if type(value) is bool else Undefined


# The leaf types whose common values answer as they are (what their coercion returns for them).
AS_THEY_ARE: dict[Any, Callable[[Any], Any]] = {
    GraphQLInt: _int,
    GraphQLFloat: _float,
    GraphQLString: _str,
    GraphQLBoolean: _bool,
}


def _coercing(leaf: Any) -> Callable[[Any], Any]:
    """Another leaf type (a scalar such as Date, an enum): its own coercion, Undefined when it
    fails or gives nothing (graphql-core's path then makes the error)."""

    def coerce(value: Any) -> Any:
        if isinstance(value, Exception):
            return Undefined
        try:
            coerced = leaf.coerce_output_value(value)
        except Exception:
            return Undefined
        return Undefined if coerced is None else coerced

    return coerce


# A planned field: (response name, its field details, attribute to read or None, completion).
Planned = tuple[str, Any, str | None, Callable[[Any], Any] | None, bool]


class InlineLeaves(StrawberryGraphQLCoreExecutionContext):
    """See the module's docstring."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        manager = self.middleware_manager
        self._inline = manager is None or not manager.middlewares
        # By the identity of a grouped field set (kept alive with its plan, as graphql-core's
        # own memo keeps its field lists, so that an id is never reused during execution).
        self._plans: dict[int, tuple[Any, list[Planned]]] = {}

    def _plan(self, parent_type: GraphQLObjectType, grouped_field_set: Any) -> list[Planned]:
        known = self._plans.get(id(grouped_field_set))
        if known is not None:
            return known[1]
        plan: list[Planned] = []
        for response_name, field_details_list in grouped_field_set.items():
            attribute, complete, non_null = None, None, False
            field_def = parent_type.fields.get(field_details_list[0].node.name.value)
            definition = field_def.extensions.get(DEFINITION) if field_def else None
            plain = (
                self._inline
                and field_def is not None
                and getattr(field_def.resolve, "_is_default", False)
                and isinstance(definition, StrawberryField)
                and definition.default_resolver is getattr
                and is_leaf_type(get_nullable_type(field_def.type))
            )
            if plain and field_def is not None and isinstance(definition, StrawberryField):
                leaf = get_nullable_type(field_def.type)
                attribute = definition.python_name
                complete = AS_THEY_ARE.get(leaf) or _coercing(leaf)
                non_null = is_non_null_type(field_def.type)
            plan.append((response_name, field_details_list, attribute, complete, non_null))
        self._plans[id(grouped_field_set)] = (grouped_field_set, plan)
        return plan

    def execute_fields(
        self,
        parent_type: GraphQLObjectType,
        source_value: Any,
        path: Path | None,
        grouped_field_set: Any,
        position_context: Any,
    ) -> Any:
        plan = self._plan(parent_type, grouped_field_set)
        results: dict[str, Any] = {}
        awaitable_fields: list[str] = []
        is_awaitable = self.is_awaitable
        try:
            for response_name, field_details_list, attribute, complete, non_null in plan:
                if attribute is not None and complete is not None:
                    try:
                        value = getattr(source_value, attribute)
                    except Exception:
                        value = Undefined  # graphql-core's way makes the error
                    if value is None and not non_null:
                        results[response_name] = None
                        continue
                    completed = Undefined if value is Undefined else complete(value)
                    if completed is not Undefined:
                        results[response_name] = completed
                        continue
                # Anything else, or a leaf to refuse: graphql-core's own way.
                field_path = Path(path, response_name, parent_type.name)
                result = self.execute_field(
                    parent_type, source_value, field_details_list, field_path, position_context
                )
                if result is not Undefined:
                    results[response_name] = result
                    if is_awaitable(result):
                        awaitable_fields.append(response_name)
        except Exception:
            if awaitable_fields:
                self.settle_in_background([results[name] for name in awaitable_fields])
            raise
        if not awaitable_fields:
            return results
        return self._gathered(results, awaitable_fields)

    async def _gathered(self, results: dict[str, Any], awaitable_fields: list[str]) -> Any:
        """graphql-core's `execute_fields` tail: the awaitable fields awaited together."""
        if len(awaitable_fields) == 1:
            name = awaitable_fields[0]
            results[name] = await results[name]
        else:
            awaited = await gather_with_cancel(*(results[name] for name in awaitable_fields))
            results.update(zip(awaitable_fields, awaited, strict=True))
        return results
