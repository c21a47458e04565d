"""`GET /w/{buttonKey}`: a website WhatsApp button's link; records the click, redirects to wa.me."""

from sqlmodel.ext.asyncio.session import AsyncSession
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from api.observability import count_ingested
from api.ratelimit import RateLimiter
from api.writing import busy, store
from ingest import buttons
from ingest.writer import WriterBusy
from models.db import now, session_factory

NOT_FOUND_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Link not found</title></head>
<body><h1>Link not found</h1><p>This WhatsApp link does not exist or was removed.</p></body></html>
"""


async def click(request: Request) -> Response:
    key = request.path_params["key"]
    engine = request.app.state.engine
    async with session_factory(engine)() as session:
        found = await buttons.find_button(session, key)
    if found is None:
        count_ingested("click", "unknown_button")
        return HTMLResponse(NOT_FOUND_PAGE, status_code=404)
    button, display_number = found
    if request.method == "HEAD":  # link checkers and previews: answered, not a click
        return _redirect(buttons.whatsapp_link(display_number, button.prefill, None))
    address = request.client.host if request.client else "unknown"
    limiter: RateLimiter = request.app.state.click_limiter
    if await limiter.retry_after(address) is not None:
        # The visitor still reaches WhatsApp; the click is not recorded (bots, floods).
        count_ingested("click", "rate_limited")
        return _redirect(buttons.whatsapp_link(display_number, button.prefill, None))
    details = buttons.click_details(request.headers.get("referer"), dict(request.query_params))

    async def work(session: AsyncSession) -> str:
        row = await buttons.record_click(session, button, details, now())
        return row.ref_code

    try:
        code = await store(request, work, 1, [button.account_id])
    except WriterBusy as error:
        return busy(error)
    count_ingested("click", "stored")
    return _redirect(buttons.whatsapp_link(display_number, button.prefill, code))


def _redirect(link: str) -> Response:
    # Every visit must reach us to be counted: no caching of the redirect.
    return RedirectResponse(
        link, status_code=302, headers={"Cache-Control": "no-store", "X-Robots-Tag": "noindex"}
    )


routes = [Route("/w/{key}", click, methods=["GET"])]
