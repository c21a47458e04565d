"""Signed CSV download links: what a link carries, signing and reading it, and minting one for
the `exportReportCsv` mutation. The route that serves them is `api.exports`."""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from itsdangerous import BadSignature, SignatureExpired, TimestampSigner, URLSafeTimedSerializer
from sqlmodel.ext.asyncio.session import AsyncSession

from models.db import now
from models.errors import NotFound
from models.settings import Settings
from resolvers.export import account_name, export_filename, filter_payload
from resolvers.filters import Filter

SALT = "wareports-export"
# A link minted by one host and served by another a second earlier in wall-clock time must not
# read as "from the future" (itsdangerous answers SignatureExpired for a negative age).
CLOCK_SKEW_SECONDS = 30


class LinkAltered(Exception):
    """The token was not signed with this server's key (or was edited)."""


class LinkExpired(Exception):
    """The token is authentic but older than the export TTL."""


@dataclass(frozen=True)
class ExportLink:
    """What a download link carries: whose data, which report, which (validated) filter."""

    account_id: int
    report: str
    filter: dict[str, Any]


class _ClockSigner(TimestampSigner):
    """A timestamp signer whose clock can be set, so tests can mint links issued in the past."""

    def __init__(self, *args: Any, clock: Callable[[], int] = now, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.clock = clock

    def get_timestamp(self) -> int:
        return self.clock()


def _serializer(secret_key: str, clock: Callable[[], int]) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(
        secret_key, salt=SALT, signer=_ClockSigner, signer_kwargs={"clock": clock}
    )


def sign_link(secret_key: str, link: ExportLink, clock: Callable[[], int] = now) -> str:
    """The URL-safe token of `link`, timestamped by `clock`."""
    payload = {"account": link.account_id, "report": link.report, "filter": link.filter}
    return _serializer(secret_key, clock).dumps(payload)


def read_link(
    secret_key: str, token: str, ttl_seconds: int, clock: Callable[[], int] = now
) -> ExportLink:
    """The link a token carries; LinkAltered when not authentic, LinkExpired when too old."""
    serializer = _serializer(secret_key, clock)
    try:
        payload = serializer.loads(token, max_age=ttl_seconds)
    except SignatureExpired as exc:
        if not _issued_just_ahead(exc, clock()):
            raise LinkExpired(str(exc)) from exc
        payload = serializer.loads(token)
    except BadSignature as exc:
        raise LinkAltered(str(exc)) from exc
    return _link_of(payload)


def _issued_just_ahead(exc: SignatureExpired, moment: int) -> bool:
    issued = exc.date_signed
    return issued is not None and 0 < issued.timestamp() - moment <= CLOCK_SKEW_SECONDS


def _link_of(payload: object) -> ExportLink:
    # Only this server signs, so a malformed payload means a key shared with something else.
    if not isinstance(payload, dict):
        raise LinkAltered("payload is not an object")
    account, report, filter_ = payload.get("account"), payload.get("report"), payload.get("filter")
    if not isinstance(account, int) or not isinstance(report, str) or not isinstance(filter_, dict):
        raise LinkAltered("payload lacks account, report or filter")
    return ExportLink(account_id=account, report=report, filter=filter_)


# -- minting (the mutation) ----------------------------------------------------------------------


class ExportNotConfigured(Exception):
    """No `WAREPORTS_SECRET_KEY`: links could not be signed."""


@dataclass(frozen=True)
class MintedExport:
    url: str
    expires_at: int  # UTC epoch seconds
    filename: str


async def create_export(
    session: AsyncSession,
    settings: Settings,
    account_id: int,
    report: str,
    flt: Filter,
    clock: Callable[[], int] = now,
) -> MintedExport:
    """A signed download link for one report of the caller's account and a validated filter."""
    if settings.secret_key is None:
        raise ExportNotConfigured("CSV export is not configured: set WAREPORTS_SECRET_KEY")
    name = await account_name(session, account_id)
    if name is None:
        raise NotFound(f"no account {account_id}")
    issued = clock()
    link = ExportLink(account_id, report, filter_payload(flt))
    token = sign_link(settings.secret_key, link, clock=lambda: issued)
    return MintedExport(
        url=f"{settings.public_url}/exports/{token}",
        expires_at=issued + settings.export_ttl_seconds,
        filename=export_filename(report, name, flt),
    )
