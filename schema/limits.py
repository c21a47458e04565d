"""Query limits (depth, aliases, tokens, estimated cost), each refused as QUERY_TOO_COMPLEX before
any resolver runs, so a refused query never reaches the database."""

import asyncio
import logging
import time
from collections import Counter, OrderedDict
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from graphql import (
    DocumentNode,
    ExecutionResult,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLNamedType,
    GraphQLResolveInfo,
    GraphQLSchema,
    GraphQLSyntaxError,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    get_named_type,
    get_nullable_type,
    get_operation_ast,
    is_list_type,
    validate,
)
from graphql.execution import get_argument_values, get_variable_values
from graphql.execution.values import VariableValues
from strawberry.extensions import (
    AddValidationRules,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    QueryDepthLimiter,
    SchemaExtension,
)

from resolvers.entities import account_counts
from schema.execution import InlineLeaves

TOO_COMPLEX = "QUERY_TOO_COMPLEX"
log = logging.getLogger(__name__)

# A page of `conversationDetails` holds at most this many edges (README: Reports); a larger
# `first` is costed at this size and left to the resolver, which answers BAD_USER_INPUT without SQL.
MAX_PAGE_SIZE = 500
# Lists whose length the account's rows do not bound cheaply (click groups by referrer or UTM
# value; a conversation's or contact's tags, at most 100 each): a nominal length. Agents, tags,
# report rows and buttons are costed at the account's real counts (`COUNTED_LISTS`); a list of
# the schema not named in either place counts as UNKNOWN_LIST_SIZE.
UNKNOWN_LIST_SIZE = 10
# The lists whose length one of the account's counts (`resolvers.entities.account_counts`)
# gives; as none at all (a lower bound), and as many as most accounts hold at most.
COUNTED_LISTS = {
    "Query.agents": "agents",
    "AgentReport.rows": "agents",
    "Query.tags": "tags",
    "TagReport.rows": "tags",
    "WidgetReport.byButton": "buttons",
    "Query.buttons": "buttons",
}
EMPTY_COUNTED_LISTS = dict.fromkeys(COUNTED_LISTS, 0)
GENEROUS_COUNTED_LISTS = dict.fromkeys(COUNTED_LISTS, 100)
FIXED_LIST_SIZES = {"bySource": 3, "heatmap": 168, "weekly": 7}
# Fragments can expand a short document exponentially (a fragment spreading another twice, ...);
# these bounds are checked before validation, whose rules walk the expanded document.
MAX_EXPANDED_FIELDS = 10_000
MAX_NESTING = 64
# One response name selected more often than this in one selection set is refused: merging
# the copies costs graphql-core's overlap check a time quadratic in their number.
MAX_REPEATS = 20
# graphql-core's parser refusals that are limits, not syntax mistakes.
PARSER_LIMIT_MESSAGES = (" tokens. Parsing aborted.", "nested too deeply")


@dataclass(frozen=True)
class QueryLimits:
    """The bounds every operation must stay within (settings `WAREPORTS_MAX_QUERY_*`)."""

    max_depth: int = 10
    max_aliases: int = 20
    max_tokens: int = 5000
    max_cost: int = 200_000
    max_range_days: int = 366


def too_complex(message: str) -> GraphQLError:
    return GraphQLError(message, extensions={"code": TOO_COMPLEX})


def _coded(error: GraphQLError) -> GraphQLError:
    error.extensions = {**(error.extensions or {}), "code": TOO_COMPLEX}
    return error


class _EarlyRules(AddValidationRules):
    """Runs its rules alone, before graphql-core's validation, which is skipped when they refuse:
    a refused document never pays for the full validation (quadratic in the worst case)."""

    def on_operation(self) -> Iterator[None]:
        yield  # the rules are not added to the full validation: they already ran

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        if context.graphql_document is not None and context.pre_execution_errors is None:
            errors = validate(
                context.schema._schema, context.graphql_document, self.validation_rules
            )
            if errors:
                # Strawberry skips its validation when an extension has set errors.
                context.pre_execution_errors = [_coded(error) for error in errors]
        yield


class DepthLimit(_EarlyRules, QueryDepthLimiter):
    """Strawberry's depth limit (introspection fields excluded), coded QUERY_TOO_COMPLEX."""


class AliasLimit(_EarlyRules, MaxAliasesLimiter):
    """Strawberry's alias limit, coded QUERY_TOO_COMPLEX."""


class TokenLimit(MaxTokensLimiter):
    """Strawberry's token limit; the parser's token and nesting refusals coded."""

    def on_parse(self) -> Iterator[None]:
        yield
        for error in self.execution_context.pre_execution_errors or ():
            if isinstance(error, GraphQLSyntaxError) and any(
                text in error.message for text in PARSER_LIMIT_MESSAGES
            ):
                _coded(error)


class _Refused(Exception):
    pass


@dataclass(frozen=True)
class _Shape:
    """A selection set measured with its fragments spread: fields in all, levels below it, and
    how often each response name occurs at its own level."""

    fields: int
    height: int
    names: Counter[str]


@dataclass
class _Expansion:
    """Measures a document with its fragments spread, measuring each fragment once, so that a
    fragment spread many times costs nothing more to measure."""

    fragments: dict[str, FragmentDefinitionNode]
    shapes: dict[str, _Shape]

    def measure(self, selection_set: SelectionSetNode, nesting: int) -> _Shape:
        if nesting > MAX_NESTING:
            raise _Refused(f"The query nests selections more than {MAX_NESTING} levels deep.")
        fields, height, names = 0, 0, Counter[str]()
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                name = (selection.alias or selection.name).value
                names[name] += 1
                fields += 1
                if selection.selection_set is not None:
                    inner = self.measure(selection.selection_set, nesting + 1)
                    fields += inner.fields
                    height = max(height, inner.height + 1)
                continue
            if isinstance(selection, InlineFragmentNode):
                inner = self.measure(selection.selection_set, nesting + 1)
            elif isinstance(selection, FragmentSpreadNode):
                inner = self.fragment(selection.name.value, nesting)
            else:
                continue
            fields += inner.fields
            height = max(height, inner.height + 1)
            names.update(inner.names)
        return self._checked(_Shape(min(fields, MAX_EXPANDED_FIELDS + 1), height, names))

    def fragment(self, name: str, nesting: int) -> _Shape:
        shape = self.shapes.get(name)
        if shape is None:
            definition = self.fragments.get(name)
            if definition is None:
                return _Shape(0, 0, Counter())  # unknown fragment: validation reports it
            self.shapes[name] = _Shape(0, 0, Counter())  # a cycle: validation reports it
            shape = self.shapes[name] = self.measure(definition.selection_set, nesting + 1)
        if nesting + shape.height > MAX_NESTING:
            raise _Refused(f"The query nests selections more than {MAX_NESTING} levels deep.")
        return shape

    @staticmethod
    def _checked(shape: _Shape) -> _Shape:
        if shape.fields > MAX_EXPANDED_FIELDS:
            raise _Refused(
                f"The query expands to more than {MAX_EXPANDED_FIELDS} fields once its "
                "fragments are spread."
            )
        name, count = max(shape.names.items(), key=lambda item: item[1], default=("", 0))
        if count > MAX_REPEATS:
            raise _Refused(
                f"The field {name!r} is selected {count} times in one selection; the limit is "
                f"{MAX_REPEATS}."
            )
        return shape


def shape_error(document: DocumentNode) -> GraphQLError | None:
    """QUERY_TOO_COMPLEX when the document, fragments spread, has too many fields, nests too
    deeply or repeats a field too often; None when its shape is acceptable."""
    expansion = _Expansion(
        fragments={
            node.name.value: node
            for node in document.definitions
            if isinstance(node, FragmentDefinitionNode)
        },
        shapes={},
    )
    try:
        for name in expansion.fragments:
            expansion.fragment(name, 0)
        total = sum(
            expansion.measure(node.selection_set, 0).fields
            for node in document.definitions
            if isinstance(node, OperationDefinitionNode)
        )
        expansion._checked(_Shape(total, 0, Counter()))
    except _Refused as refusal:
        return too_complex(str(refusal))
    return None


class DocumentShape(SchemaExtension):
    """Refuses, before any validation rule walks it, a document whose fragments expand too far,
    that nests too deeply or repeats a field too often (graphql-core's overlap check is
    quadratic in the repeats)."""

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        if context.graphql_document is not None and context.pre_execution_errors is None:
            error = shape_error(context.graphql_document)
            if error is not None:
                # Strawberry skips its validation when an extension has set errors.
                context.pre_execution_errors = [error]
        yield


@dataclass
class CostEstimate:
    """The number of values an operation would resolve: each field counts once per instance,
    lists multiply by their expected length (page size, days in range, or a nominal size)."""

    schema: GraphQLSchema
    fragments: dict[str, FragmentDefinitionNode]
    variables: VariableValues
    max_range_days: int
    sizes: dict[str, int] = field(default_factory=dict)  # list lengths by `Type.field`
    counted: set[str] = field(default_factory=set)  # the paths of `sizes` the operation selects

    def selections(
        self, selection_set: SelectionSetNode, parent: GraphQLNamedType, days: int, page: int
    ) -> int:
        total = 0
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                total += self.field(selection, parent, days, page)
            elif isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition
                inner = self.schema.get_type(condition.name.value) if condition else parent
                total += self.selections(selection.selection_set, inner or parent, days, page)
            elif isinstance(selection, FragmentSpreadNode):
                fragment = self.fragments[selection.name.value]
                inner = self.schema.get_type(fragment.type_condition.name.value)
                total += self.selections(fragment.selection_set, inner or parent, days, page)
        return total

    def field(self, node: FieldNode, parent: GraphQLNamedType, days: int, page: int) -> int:
        definition = getattr(parent, "fields", {}).get(node.name.value)
        if definition is None:  # __typename and other meta fields
            return 1
        arguments = get_argument_values(definition, node, self.variables)
        days = self._days(arguments.get("filter"), days)
        page = self._page(arguments.get("first"), page)
        size = 1
        if is_list_type(get_nullable_type(definition.type)):
            size = self._list_size(f"{parent.name}.{node.name.value}", days, page)
        if node.selection_set is None:
            return size
        inner = self.selections(node.selection_set, get_named_type(definition.type), days, page)
        return 1 + size * inner

    def _days(self, value: object, current: int) -> int:
        if not isinstance(value, dict):
            return current
        start, end = value.get("from"), value.get("to")
        if not isinstance(start, date) or not isinstance(end, date):
            return self.max_range_days
        return min(max((end - start).days + 1, 1), self.max_range_days)

    @staticmethod
    def _page(value: object, current: int) -> int:
        if not isinstance(value, int):
            return current
        return min(max(value, 0), MAX_PAGE_SIZE)

    def _list_size(self, path: str, days: int, page: int) -> int:
        if path in self.sizes:
            self.counted.add(path)
            return self.sizes[path]
        name = path.rpartition(".")[2]
        if name == "daily":
            return days
        if name == "weekly":
            return days // 7 + 2
        if name == "edges":
            return page
        return FIXED_LIST_SIZES.get(name, UNKNOWN_LIST_SIZE)


def estimate_cost(
    schema: GraphQLSchema,
    document: Any,
    operation_name: str | None,
    variables: dict[str, Any] | None,
    max_range_days: int,
    sizes: dict[str, int] | None = None,
    counted: set[str] | None = None,
) -> int | None:
    """The estimated cost of the operation to execute; None when execution will refuse it anyway
    (no such operation, invalid variables or arguments). `sizes`: list lengths by `Type.field`;
    `counted` receives those the operation selects."""
    operation = get_operation_ast(document, operation_name)
    root = None if operation is None else schema.get_root_type(operation.operation)
    if operation is None or root is None:
        return None
    coerced = get_variable_values(schema, operation.variable_definitions or (), variables or {})
    if isinstance(coerced, list):
        return None
    estimate = CostEstimate(
        schema=schema,
        fragments={
            node.name.value: node
            for node in document.definitions
            if isinstance(node, FragmentDefinitionNode)
        },
        variables=coerced,
        max_range_days=max_range_days,
        sizes=sizes or {},
        counted=set() if counted is None else counted,
    )
    try:
        return estimate.selections(operation.selection_set, root, max_range_days, MAX_PAGE_SIZE)
    except GraphQLError:
        return None


class QueryCost(SchemaExtension):
    """Refuses, before execution, an operation whose estimated cost exceeds the bound."""

    def __init__(self, limits: QueryLimits) -> None:
        self.limits = limits

    async def on_execute(self) -> AsyncIterator[None]:
        context = self.execution_context

        def estimate(sizes: dict[str, int], counted: set[str] | None = None) -> int | None:
            return estimate_cost(
                context.schema._schema,
                context.graphql_document,
                context.operation_name,
                context.variables,
                self.limits.max_range_days,
                sizes,
                counted,
            )

        # First with the counted lists empty, a lower bound: what is too costly whatever the
        # account holds is refused without a statement. Then, if the operation selects such a
        # list, with a generous length for each: within the bound, it runs (ExecutionBudget
        # stops it should an account hold more); else with the account's real counts (one
        # statement), which refuse a year of 383 tags' daily figures before any report SQL.
        counted: set[str] = set()
        cost = estimate(EMPTY_COUNTED_LISTS, counted)
        if cost is not None and cost <= self.limits.max_cost and counted:
            cost = estimate(GENEROUS_COUNTED_LISTS)
            if cost is not None and cost > self.limits.max_cost:
                cost = estimate(await _list_sizes(context.context))
        if cost is not None and cost > self.limits.max_cost:
            # A result set before execution replaces it: no resolver runs.
            context.result = ExecutionResult(
                data=None,
                errors=[
                    too_complex(
                        f"The query would resolve about {cost} values; the limit is "
                        f"{self.limits.max_cost}. Ask for fewer days, a smaller page or "
                        "fewer fields."
                    )
                ],
            )
        yield


async def _list_sizes(request_context: Any) -> dict[str, int]:
    """The account's real list lengths, for an operation run with a request's context (a
    session and a principal); else none (nominal lengths)."""
    session = getattr(request_context, "session", None)
    principal = getattr(request_context, "principal", None)
    # Every counted list is under a `reports:read` field: a caller without the scope is refused
    # by the field, and need not cost a statement.
    if session is None or principal is None or not principal.has("reports:read"):
        return {}
    try:
        counts = await account_counts(session, principal.account_id)
    except Exception:
        # The resolvers meet the same failure, and answer it masked (INTERNAL_SERVER_ERROR).
        log.exception("could not count the account's lists for the query cost")
        return {}
    return {path: counts[count] for path, count in COUNTED_LISTS.items()}


TURN_SECONDS = 0.05  # execution holds the event loop at most about this long at a time
LONG_LIST = 500  # a list longer than this is completed item by item, giving the loop turns


class PacedExecution(InlineLeaves):
    """graphql-core's execution, watched at each list it completes: it stops with
    QUERY_TOO_COMPLEX once the lists' items (each counting one value per field selected in it)
    pass `value_limit` (the estimate guesses some lists' lengths), and completes a long list as
    an asynchronous iterable that gives the event loop a turn about every TURN_SECONDS, where
    graphql-core completes a plain list in one synchronous pass that held every other request
    (`/healthz` included) for as long. Only lists are looked at: a hook on every field (a
    Strawberry `resolve` extension) cost a details page of 500 rows a third more."""

    value_limit: int = QueryLimits().max_cost

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.values = 0
        self.turn_began = time.monotonic()

    def complete_list_value(
        self,
        return_type: Any,
        field_details_list: Any,
        info: GraphQLResolveInfo,
        path: Any,
        result: Any,
        position_context: Any,
    ) -> Any:
        if isinstance(result, list):
            selection_set = field_details_list[0].node.selection_set
            width = len(selection_set.selections) if selection_set is not None else 0
            self.values += len(result) * (1 + width)
            if self.values > self.value_limit:
                raise too_complex(
                    f"The query resolved more than {self.value_limit} values, the limit; ask "
                    "for fewer days, a smaller page or fewer fields."
                )
            if len(result) > LONG_LIST:
                result = self._with_turns(result)
        return super().complete_list_value(
            return_type, field_details_list, info, path, result, position_context
        )

    async def _with_turns(self, items: list[Any]) -> AsyncIterator[Any]:
        for index, item in enumerate(items):
            if index % 64 == 0 and time.monotonic() - self.turn_began > TURN_SECONDS:
                await asyncio.sleep(0)
                self.turn_began = time.monotonic()
            yield item


def paced_execution(limits: QueryLimits) -> type[PacedExecution]:
    """The execution context class for a schema with these limits."""
    return type("PacedExecution", (PacedExecution,), {"value_limit": limits.max_cost})


class ValidatedQueries:
    """The query texts that passed validation against one schema, the most recent `size`."""

    def __init__(self, size: int = 256) -> None:
        self.size = size
        self._texts: OrderedDict[str, None] = OrderedDict()

    def __contains__(self, text: object) -> bool:
        if text in self._texts:
            self._texts.move_to_end(text)  # type: ignore[arg-type]
            return True
        return False

    def add(self, text: str) -> None:
        self._texts[text] = None
        if len(self._texts) > self.size:
            self._texts.popitem(last=False)


class KnownValidQuery(SchemaExtension):
    """Skips every validation step for a query text that already passed them all (the shape,
    depth and alias checks and graphql-core's rules depend on the document alone): a dashboard
    sending the same queries all day pays for validation once, not ~10 ms each time. The cost,
    which depends on the variables, is still estimated at every execution; a text that failed
    is validated again each time (only passes are remembered)."""

    def __init__(self, queries: ValidatedQueries) -> None:
        self.queries = queries

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        text = context.query
        known = context.pre_execution_errors is None and text is not None and text in self.queries
        if known:
            # Not None: the other checks and Strawberry's validation see it done and skip.
            context.pre_execution_errors = []
        yield
        if not known and text is not None and context.pre_execution_errors == []:
            self.queries.add(text)


def limit_extensions(limits: QueryLimits) -> list[Callable[[], SchemaExtension]]:
    """The schema extensions enforcing `limits`, as factories (one instance per operation)."""
    # Order matters: on_validate hooks run in this order, and the shape check must come
    # before the depth and alias rules, which walk the document with its fragments spread;
    # a known valid query skips them all.
    validated = ValidatedQueries()
    return [
        lambda: KnownValidQuery(validated),
        lambda: TokenLimit(max_token_count=limits.max_tokens),
        DocumentShape,
        lambda: DepthLimit(max_depth=limits.max_depth),
        lambda: AliasLimit(max_alias_count=limits.max_aliases),
        lambda: QueryCost(limits),
    ]
