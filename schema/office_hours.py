"""The `officeHours` and `serviceLevel` root fields: the account's weekly schedule and closed
dates, and its service-level targets."""

from datetime import date

import strawberry

from models.office_hours import OfficeHours as Hours
from resolvers import entities
from schema.context import CanReadReports, WareportsInfo


@strawberry.type(description="Working time on a weekday, as local wall-clock times.")
class TimeInterval:
    start: str = strawberry.field(name="from", description='Start, "HH:MM" ("09:00").')
    to: str = strawberry.field(
        description='End, "HH:MM" ("18:00"; "24:00": the midnight after). Not after `from`: the '
        "interval crosses midnight and ends on the next weekday (an overnight shift)."
    )


@strawberry.type(description="One weekday's working intervals.")
class WeekdayHours:
    weekday: int = strawberry.field(description="1 = Monday .. 7 = Sunday.")
    intervals: list[TimeInterval] = strawberry.field(
        description="Ascending; empty: closed all day (but for an overnight interval of the "
        "day before)."
    )


@strawberry.type(
    description="When the account is open, in its zone: business-time figures count only these "
    "instants (a skipped daylight-saving hour holds none, a repeated one counts twice)."
)
class OfficeHours:
    timezone: str = strawberry.field(description="The account's zone, which the hours are in.")
    weekly: list[WeekdayHours] = strawberry.field(description="Always seven, Monday first.")
    closed_dates: list[date] = strawberry.field(
        description="Dates with no office hours at all (00:00 to 24:00), ascending."
    )

    @classmethod
    def of(cls, hours: Hours, timezone: str) -> "OfficeHours":
        weekly = [
            WeekdayHours(
                weekday=index + 1,
                intervals=[TimeInterval(start=a, to=b) for a, b in (i.text() for i in day)],
            )
            for index, day in enumerate(hours.weekly)
        ]
        return cls(timezone=timezone, weekly=weekly, closed_dates=sorted(hours.closed))


@strawberry.type(
    description="The account's service-level targets (`wareports account set-sla`): what "
    "slaFirstResponseMet/Breached, slaResolutionMet/Breached and slaHitPercent judge."
)
class ServiceLevel:
    first_response_seconds: int | None = strawberry.field(
        description="From the contact's first message to the first human reply; null: none."
    )
    resolution_seconds: int | None = strawberry.field(
        description="From the conversation's start to its close; null: none."
    )
    business_hours: bool = strawberry.field(
        description="Whether the targets count office hours (else calendar time)."
    )


@strawberry.type
class OfficeHoursQuery:
    @strawberry.field(
        description="The account's office hours (`wareports account set-office-hours`); null "
        "when none are set: every instant counts as working time.",
        permission_classes=[CanReadReports],
    )
    async def office_hours(self, info: WareportsInfo) -> OfficeHours | None:
        context = info.context
        hours = await entities.office_hours(context.session, context.account_id)
        return None if hours is None else OfficeHours.of(hours, context.principal.timezone)

    @strawberry.field(
        description="The account's service-level targets; null when none are set.",
        permission_classes=[CanReadReports],
    )
    async def service_level(self, info: WareportsInfo) -> ServiceLevel | None:
        context = info.context
        row = await entities.service_level(context.session, context.account_id)
        if row is None:
            return None
        return ServiceLevel(
            first_response_seconds=row.first_response_seconds,
            resolution_seconds=row.resolution_seconds,
            business_hours=row.business_hours,
        )
