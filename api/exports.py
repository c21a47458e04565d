"""Signed, expiring CSV download links: minting their token and the `GET /exports/{token}` route."""

from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from itsdangerous import BadSignature, SignatureExpired, TimestampSigner, URLSafeTimedSerializer
from sqlmodel.ext.asyncio.session import AsyncSession
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from api.settings import Settings
from models.db import now, session_factory
from models.errors import BadInput, NotFound
from resolvers.aggregates import read_aggregates
from resolvers.export import (
    COLUMNS,
    REPORT_KINDS,
    Page,
    Row,
    account_name,
    encode_page,
    export_filename,
    filter_of_payload,
    filter_payload,
    report_pages,
)
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


# -- serving (the route) -------------------------------------------------------------------------


def _plain(message: str, status_code: int) -> PlainTextResponse:
    return PlainTextResponse(message + "\n", status_code=status_code)


CSV_MEDIA_TYPE = "text/csv; charset=utf-8"


class CsvDownload(StreamingResponse):
    """A streamed CSV that runs `on_close` however the response ends (finished, failed, or the
    client gone mid-file), so the download's session and page reader are always released."""

    media_type = CSV_MEDIA_TYPE
    body_iterator: AsyncGenerator[bytes, None]

    def __init__(
        self,
        content: AsyncGenerator[bytes, None],
        on_close: Callable[[], Awaitable[None]],
        headers: dict[str, str],
    ) -> None:
        super().__init__(content, headers=headers)
        self.on_close = on_close

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            await self.body_iterator.aclose()
            await self.on_close()


def _checked(settings: Settings, token: str) -> tuple[ExportLink, Filter] | Response:
    """The link and its filter, validated again; or the plain-text answer saying why not."""
    if settings.secret_key is None:
        return _plain("CSV export is not configured on this server.", 503)
    try:
        link = read_link(settings.secret_key, token, settings.export_ttl_seconds)
    except LinkExpired:
        return _plain("This download link has expired; export the report again.", 410)
    except LinkAltered:
        return _plain("This download link is invalid.", 403)
    if link.report not in REPORT_KINDS:
        return _plain("This download link is invalid.", 403)
    try:
        return link, filter_of_payload(link.filter, settings.max_range_days)
    except BadInput as exc:
        return _plain(f"This download link's filter is no longer valid: {exc}", 400)


async def download(request: Request) -> Response:
    """`GET /exports/{token}`: the CSV a signed link names, no bearer token needed."""
    checked = _checked(request.app.state.settings, request.path_params["token"])
    if isinstance(checked, Response):
        return checked
    link, flt = checked
    session = session_factory(request.app.state.engine)()  # a session of its own per download
    read_aggregates(session, request.app.state.settings.report_aggregates)
    streaming = False
    try:
        name = await account_name(session, link.account_id)
        if name is None:
            return _plain("This download link's account no longer exists.", 404)
        filename = export_filename(link.report, name, flt)
        headers = {
            "Content-Disposition": f'attachment; filename="{filename}"',
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
        }
        if request.method == "HEAD":
            return Response(headers=headers, media_type=CSV_MEDIA_TYPE)
        pages = report_pages(session, link.account_id, link.report, flt)
        # The first page (for most kinds the whole report) is read before the status line goes
        # out, so a failure there is an error response rather than a truncated 200.
        first = await anext(pages, None)
        await session.commit()

        async def close() -> None:
            await pages.aclose()
            await session.close()

        response = CsvDownload(_body(session, COLUMNS[link.report], first, pages), close, headers)
        streaming = True
        return response
    finally:
        if not streaming:
            await session.close()


async def _body(
    session: AsyncSession, header: Row, first: Page | None, pages: AsyncGenerator[Page, None]
) -> AsyncGenerator[bytes, None]:
    """The header row, then one chunk per page; each page's read transaction ends before the
    page is sent, so a slow client holds no snapshot and no pooled connection while it reads."""
    yield encode_page([header, *(first or ())])
    if first is None:
        return
    async for page in pages:
        await session.commit()
        yield encode_page(page)


routes = [Route("/exports/{token}", download, methods=["GET"])]
