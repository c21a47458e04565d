"""The pages browsers open: the dashboard at `/` and GraphiQL at `/graphql`, both served from
the package (`api/static/`, vendored libraries at pinned versions with their licences) under a
Content-Security-Policy that lets them load and call nothing but this server."""

from pathlib import Path

from starlette.datastructures import MutableHeaders
from starlette.middleware.gzip import GZipMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from models.settings import Settings

STATIC = Path(__file__).parent / "static"
ASSETS = "/assets"

# Only this server: scripts, styles, data requests, frames, forms. GraphiQL's stylesheet embeds
# its fonts and a few icons as data: URIs (no request leaves the page), hence the one exception.
DASHBOARD_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
GRAPHIQL_POLICY = DASHBOARD_POLICY.replace("img-src 'self'", "img-src 'self' data:").replace(
    "font-src 'self'", "font-src 'self' data:"
)
PAGE_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


def page(path: Path, policy: str) -> Response:
    """One HTML page of the package with its policy."""
    return FileResponse(
        path,
        media_type="text/html; charset=utf-8",
        headers={"Content-Security-Policy": policy, **PAGE_HEADERS},
    )


def graphiql_page() -> Response:
    return page(STATIC / "graphiql" / "index.html", GRAPHIQL_POLICY)


async def dashboard(request: Request) -> Response:
    return page(STATIC / "dashboard" / "index.html", DASHBOARD_POLICY)


class Assets:
    """The package's static files, compressed for browsers that accept it; `nosniff` so a
    file is only ever run as what its extension says."""

    def __init__(self) -> None:
        self.files: ASGIApp = GZipMiddleware(StaticFiles(directory=STATIC), minimum_size=1024)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message).append("X-Content-Type-Options", "nosniff")
            await send(message)

        await self.files(scope, receive, with_headers)


def routes(settings: Settings) -> list[BaseRoute]:
    """The assets (GraphiQL's too), and the dashboard unless `WAREPORTS_DASHBOARD=false`."""
    served: list[BaseRoute] = [Mount(ASSETS, app=Assets(), name="assets")]
    if settings.dashboard:
        served.append(Route("/", dashboard, methods=["GET", "HEAD"]))
    return served
