"""Plain leaves completed inline (`schema.execution.InlineLeaves`) answer exactly what graphql-core
answers field by field: the same data, the same errors at the same paths."""

import asyncio
import datetime
import enum
from typing import Any

import pytest
import strawberry
from strawberry.extensions import SchemaExtension
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from schema.execution import InlineLeaves


class Boom(Exception):
    pass


@strawberry.enum
class Colour(enum.Enum):
    RED = "red"
    BLUE = "blue"


@strawberry.type
class Item:
    key: int | None
    count: int


@strawberry.type
class Row:
    number: int
    maybe_number: int | None
    ratio: float
    maybe_ratio: float | None
    name: str
    flag: bool
    ident: strawberry.ID
    colour: Colour
    day: datetime.date
    maybe_day: datetime.date | None
    numbers: list[int]
    items: list[Item]
    child: Item | None

    @strawberry.field
    def doubled(self, by: int = 2) -> int:
        return self.number * by

    @strawberry.field
    async def later(self) -> int:
        await asyncio.sleep(0)
        return self.number + 1


class Odd:
    """A source whose attributes raise or hold what a field cannot answer."""

    def __init__(self, **values: Any) -> None:
        self.__dict__.update(values)

    @property
    def name(self) -> str:
        raise Boom("no name")


def good(n: int) -> Row:
    return Row(
        number=n,
        maybe_number=None,
        ratio=n / 4,
        maybe_ratio=None if n % 2 else 0.5,
        name=f"row {n}",
        flag=n % 2 == 0,
        ident=strawberry.ID(str(n)),
        colour=Colour.BLUE,
        day=datetime.date(2026, 3, n + 1),
        maybe_day=None,
        numbers=[n, n + 1],
        items=[Item(key=None, count=n), Item(key=60, count=2)],
        child=Item(key=1, count=1) if n else None,
    )


BAD_ROWS: list[Any] = [
    Odd(**{**vars(good(1)), "number": None}),  # null for a non-null Int
    Odd(**{**vars(good(2)), "number": 2**31}),  # out of Int's range
    Odd(**{**vars(good(3)), "ratio": float("nan")}),  # not a finite Float
    Odd(**{**vars(good(4)), "ratio": 3}),  # an int for a Float: coerced
    Odd(**{**vars(good(5)), "number": "7"}),  # a str for an Int
    Odd(**{**vars(good(6)), "flag": Boom("flag")}),  # an exception as the value
    Odd(**{**vars(good(7)), "colour": "GREEN"}),  # not a member of the enum
    Odd(**{**vars(good(8)), "day": None}),  # null for a non-null scalar
    Odd(**{**vars(good(9)), "maybe_number": True, "ident": 12}),  # bool for Int, int for ID
]
for bad in BAD_ROWS:
    del bad.__dict__["name"]  # the property raises


@strawberry.type
class Query:
    @strawberry.field
    def rows(self) -> list[Row]:
        return [good(n) for n in range(3)]

    @strawberry.field
    def bad_rows(self) -> list[Row | None]:
        return BAD_ROWS

    @strawberry.field
    def one(self) -> Row:
        return good(5)


QUERIES = [
    "{ rows { number maybeNumber ratio maybeRatio name flag ident colour day maybeDay numbers } }",
    "{ rows { items { key count } child { key count } doubled(by: 3) later __typename } }",
    "{ rows { a: number b: number number ...F ... on Row { colour } } } "
    "fragment F on Row { name flag }",
    "query ($s: Boolean!) { rows { number @skip(if: $s) name @include(if: $s) ratio } }",
    "{ one { number name } rows { number } }",
    "{ badRows { number } }",
    "{ badRows { ratio } }",
    "{ badRows { name } }",
    "{ badRows { flag colour } }",
    "{ badRows { day maybeNumber ident } }",
    "{ badRows { maybeDay maybeRatio numbers } }",
]


def answers(context_class: type, query: str, **extra: Any) -> tuple[Any, Any]:
    schema = strawberry.Schema(query=Query, execution_context_class=context_class, **extra)
    result = asyncio.run(schema.execute(query, variable_values={"s": False}))
    errors = sorted((e.message, tuple(e.path or ())) for e in result.errors or [])
    return result.data, errors


@pytest.mark.parametrize("query", QUERIES)
def test_inline_leaves_answer_as_graphql_core(query: str) -> None:
    expected = answers(StrawberryGraphQLCoreExecutionContext, query)
    assert answers(InlineLeaves, query) == expected


def test_the_refusals_are_graphql_cores() -> None:
    """The bad values above are refused (or coerced) as graphql-core does, field by field."""
    data, errors = answers(InlineLeaves, "{ badRows { number ratio } }")
    assert data is not None
    rows = data["badRows"]
    assert rows[0] is None  # a null non-null Int: the row is null
    assert rows[3] == {"number": 4, "ratio": 3.0}
    assert rows[4]["number"] == 7  # coerced from "7", as graphql-core does
    assert rows[1] is None and rows[2] is None  # out of range, not finite
    assert errors == [
        ("Cannot return null for non-nullable field Row.number.", ("badRows", 0, "number")),
        ("Float cannot represent non numeric value: nan", ("badRows", 2, "ratio")),
        (
            "Int cannot represent non 32-bit signed integer value: 2147483648",
            ("badRows", 1, "number"),
        ),
    ]


class Counting(InlineLeaves):
    fields: list[str] = []

    def execute_field(self, parent_type: Any, source: Any, details: Any, *rest: Any) -> Any:
        Counting.fields.append(f"{parent_type.name}.{details[0].node.name.value}")
        return super().execute_field(parent_type, source, details, *rest)


def test_plain_leaves_skip_the_field_machinery() -> None:
    Counting.fields = []
    data, errors = answers(Counting, "{ rows { number name day colour child { count } later } }")
    assert not errors and data is not None
    assert data["rows"][2] == {
        "number": 2,
        "name": "row 2",
        "day": "2026-03-03",
        "colour": "BLUE",
        "child": {"count": 1},
        "later": 3,
    }
    # The root field, then for each of the 3 rows the object field and the resolver: the
    # leaves (and the child's count) were read inline.
    assert sorted(Counting.fields) == sorted(["Query.rows"] + ["Row.child", "Row.later"] * 3)


class Watching(SchemaExtension):
    seen = 0

    def resolve(self, _next: Any, root: Any, info: Any, *args: Any, **kwargs: Any) -> Any:
        Watching.seen += 1
        return _next(root, info, *args, **kwargs)


def test_a_resolve_hook_sees_every_field() -> None:
    """With a schema extension that hooks the resolvers, nothing is read inline."""
    Watching.seen = 0
    query = "{ rows { number name child { count } } }"
    data, _ = answers(InlineLeaves, query, extensions=[Watching])
    assert data == answers(StrawberryGraphQLCoreExecutionContext, query)[0]
    assert Watching.seen == 1 + 3 * 3 + 2  # rows; 3 fields of 3 rows; the 2 children's count
