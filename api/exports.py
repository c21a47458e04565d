"""`GET /exports/{token}`: the CSV behind a signed, expiring link (`resolvers.export_links`
mints and reads them)."""

from collections.abc import AsyncGenerator, Awaitable, Callable

from sqlmodel.ext.asyncio.session import AsyncSession
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from models.db import session_factory
from models.errors import BadInput
from models.settings import Settings
from resolvers.export import (
    COLUMNS,
    REPORT_KINDS,
    Page,
    Row,
    account_name,
    encode_page,
    export_filename,
    filter_of_payload,
    report_pages,
)
from resolvers.export_links import ExportLink, LinkAltered, LinkExpired, read_link
from resolvers.filters import Filter


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
        flt = filter_of_payload(
            link.filter, settings.max_range_days, use_aggregates=settings.report_aggregates
        )
        return link, flt
    except BadInput as exc:
        return _plain(f"This download link's filter is no longer valid: {exc}", 400)


async def download(request: Request) -> Response:
    """`GET /exports/{token}`: the CSV a signed link names, no bearer token needed."""
    checked = _checked(request.app.state.settings, request.path_params["token"])
    if isinstance(checked, Response):
        return checked
    link, flt = checked
    # A session of its own per download, on the reports' engine (the replica when there is one).
    session = session_factory(request.app.state.read_engine)()
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
