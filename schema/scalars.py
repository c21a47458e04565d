"""The `Date` and `DateTime` scalars of the contract: instants are output in UTC with a `Z`."""

import re
from datetime import UTC, date, datetime

import strawberry
from graphql import GraphQLError


def _serialize_instant(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _parse_instant(value: object) -> datetime:
    try:
        parsed = datetime.fromisoformat(str(value))
    except ValueError as exc:
        raise GraphQLError(f"DateTime must be ISO 8601 with an offset, got {value!r}") from exc
    if parsed.tzinfo is None:
        raise GraphQLError(f"DateTime needs an offset (Z or +hh:mm), got {value!r}")
    return parsed


ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _parse_date(value: object) -> date:
    """Only the extended calendar form: Python also reads "20260201" and "2026-W05-1" (and an
    integer would pass through str()), which a typo or another convention can produce."""
    problem = GraphQLError(f"Date must be ISO 8601 YYYY-MM-DD, got {str(value)[:40]!r}")
    if not isinstance(value, str) or not ISO_DATE.fullmatch(value):
        raise problem
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise problem from exc


DateTime = strawberry.scalar(
    name="DateTime",
    description='ISO 8601 instant with offset; output in UTC: "2026-11-24T09:30:00Z"',
    serialize=_serialize_instant,
    parse_value=_parse_instant,
)

Date = strawberry.scalar(
    name="Date",
    description='ISO 8601 calendar date: "2026-11-24"',
    serialize=date.isoformat,
    parse_value=_parse_date,
)

SCALAR_OVERRIDES = {datetime: DateTime, date: Date}


def instant(epoch_seconds: int | None) -> datetime | None:
    """A stored instant (UTC epoch seconds) as an aware datetime."""
    return None if epoch_seconds is None else datetime.fromtimestamp(epoch_seconds, UTC)
