"""Operations built from the schema itself, so that security tests cover every root field,
including the ones added after the tests were written."""

from dataclasses import dataclass
from datetime import date
from typing import Any

from graphql import (
    GraphQLEnumType,
    GraphQLField,
    GraphQLInputObjectType,
    GraphQLInputType,
    GraphQLNamedType,
    GraphQLObjectType,
    GraphQLScalarType,
    get_named_type,
    get_nullable_type,
    is_leaf_type,
    is_list_type,
    is_non_null_type,
)
from strawberry import Schema
from strawberry.permission import PermissionExtension


@dataclass(frozen=True)
class RootField:
    operation: str  # "query" | "mutation"
    name: str
    field: GraphQLField

    @property
    def id(self) -> str:
        return f"{self.operation}.{self.name}"


@dataclass(frozen=True)
class Arguments:
    """The values used for arguments: one report range, one conversation id, one report kind."""

    start: date = date(2026, 1, 1)
    end: date = date(2026, 1, 31)
    conversation_id: int = 1
    first: int = 100


def root_fields(schema: Schema) -> list[RootField]:
    graphql_schema = schema._schema
    found = []
    for operation, root in (
        ("query", graphql_schema.query_type),
        ("mutation", graphql_schema.mutation_type),
    ):
        if root is None:
            continue
        found.extend(RootField(operation, name, field) for name, field in root.fields.items())
    return found


def declared_scopes(root: RootField) -> list[str]:
    """The scopes the permission classes of a root field demand."""
    field = root.field.extensions["strawberry-definition"]
    scopes = []
    for extension in field.extensions:
        if isinstance(extension, PermissionExtension):
            scopes.extend(getattr(permission, "scope", "") for permission in extension.permissions)
    return scopes


def literal(value_type: GraphQLInputType, arguments: Arguments, name: str) -> str | None:
    """A GraphQL literal for an argument, or None to leave an optional one out."""
    required = is_non_null_type(value_type)
    named = get_named_type(value_type)
    if isinstance(named, GraphQLInputObjectType):
        if named.name == "ReportFilter":
            return f'{{from: "{arguments.start}", to: "{arguments.end}"}}'
        parts = []
        for field_name, field in named.fields.items():
            value = literal(field.type, arguments, field_name)
            if value is not None:
                parts.append(f"{field_name}: {value}")
        return "{" + ", ".join(parts) + "}"
    if not required and name != "first":
        return None
    if isinstance(named, GraphQLEnumType):
        return next(iter(named.values))
    scalar_values = {
        "ID": f'"{arguments.conversation_id}"',
        "Int": str(arguments.first),
        "String": '"x"',
        "Boolean": "true",
        "Date": f'"{arguments.start}"',
    }
    assert isinstance(named, GraphQLScalarType)
    return scalar_values[named.name]


def argument_list(field: GraphQLField, arguments: Arguments) -> str:
    parts = []
    for name, argument in field.args.items():
        value = literal(argument.type, arguments, name)
        if value is not None:
            parts.append(f"{name}: {value}")
    return f"({', '.join(parts)})" if parts else ""


def selection(named: GraphQLNamedType, arguments: Arguments, depth: int = 0) -> str:
    """Every field of a type, nested fields included (types here are not recursive; `depth`
    guards against a future cycle)."""
    if is_leaf_type(named) or depth > 6:
        return ""
    assert isinstance(named, GraphQLObjectType)
    parts = []
    for name, field in named.fields.items():
        inner = get_named_type(field.type)
        sub = selection(inner, arguments, depth + 1)
        if not is_leaf_type(inner) and not sub:
            continue
        parts.append(f"{name}{argument_list(field, arguments)}{sub}")
    return " { " + " ".join(parts) + " }"


def operation(root: RootField, arguments: Arguments | None = None, full: bool = True) -> str:
    """`query { field(arguments) { every nested field } }`, or `{ __typename }` when not full."""
    arguments = arguments or Arguments()
    named = get_named_type(root.field.type)
    if is_leaf_type(named):
        body = ""
    elif full:
        body = selection(named, arguments)
    else:
        body = " { __typename }"
    return f"{root.operation} {{ {root.name}{argument_list(root.field, arguments)}{body} }}"


def is_list_field(field: GraphQLField) -> bool:
    return is_list_type(get_nullable_type(field.type))


def strings_in(value: Any) -> set[str]:
    """Every string (and number, as text) anywhere in a JSON answer."""
    if isinstance(value, dict):
        return set().union(*(strings_in(item) for item in value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*(strings_in(item) for item in value)) if value else set()
    if value is None or isinstance(value, bool):
        return set()
    return {str(value)}
