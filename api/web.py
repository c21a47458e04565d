"""The pages browsers open: the dashboard at `/` and GraphiQL at `/graphql`, both served from
the package (`api/static/`, vendored libraries at pinned versions with their licences) under a
Content-Security-Policy that lets them load and call nothing but this server."""

import base64
import hashlib
import re
from functools import lru_cache
from pathlib import Path

from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException
from starlette.middleware.gzip import GZipMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import BaseRoute, Mount, Route, Router
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from models.settings import Settings

STATIC = Path(__file__).parent / "static"
ASSETS = "/assets"
GRAPHIQL_CSS = STATIC / "vendor" / "graphiql-3.8.3" / "graphiql.min.css"

# Only this server, for everything: scripts, styles, fonts, images, data requests, forms.
POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
PAGE_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


def page(path: Path) -> Response:
    """One HTML page of the package with the policy."""
    return FileResponse(
        path,
        media_type="text/html; charset=utf-8",
        headers={"Content-Security-Policy": POLICY, **PAGE_HEADERS},
    )


def graphiql_page() -> Response:
    return page(STATIC / "graphiql" / "index.html")


async def dashboard(request: Request) -> Response:
    return page(STATIC / "dashboard" / "index.html")


# --- GraphiQL's stylesheet, its embedded files served as files --------------------------------
# graphiql.min.css embeds its fonts and a few icons as data: URIs, which a policy of 'self'
# refuses. The vendored file stays as published; what the page loads is that file with each
# data: URI replaced by the address of its content here (named by digest, so cacheable forever).
DATA_URI = re.compile(r"url\((['\"]?)data:([\w.+-]+/[\w.+-]+);base64,([A-Za-z0-9+/=]+)\1\)")
EMBEDDED = "graphiql/embedded"
EXTENSIONS = {
    "font/woff2": "woff2",
    "font/woff": "woff",
    "image/png": "png",
    "image/svg+xml": "svg",
}


@lru_cache(maxsize=1)
def graphiql_stylesheet() -> tuple[str, dict[str, tuple[str, bytes]]]:
    """The stylesheet without data: URIs, and the files they held by name: (media type, bytes)."""
    files: dict[str, tuple[str, bytes]] = {}

    def unpack(match: re.Match[str]) -> str:
        media, content = match[2], base64.b64decode(match[3])
        name = f"{hashlib.sha256(content).hexdigest()[:24]}.{EXTENSIONS.get(media, 'bin')}"
        files[name] = (media, content)
        return f"url({ASSETS}/{EMBEDDED}/{name})"

    return DATA_URI.sub(unpack, GRAPHIQL_CSS.read_text(encoding="utf-8")), files


async def graphiql_css(request: Request) -> Response:
    css, _ = graphiql_stylesheet()
    return Response(
        css, media_type="text/css; charset=utf-8", headers={"Cache-Control": "no-cache"}
    )


async def graphiql_embedded(request: Request) -> Response:
    _, files = graphiql_stylesheet()
    found = files.get(request.path_params["name"])
    if found is None:
        raise HTTPException(404)
    media, content = found
    return Response(
        content, media_type=media, headers={"Cache-Control": "public, max-age=31536000, immutable"}
    )


class Assets:
    """The package's static files, compressed for browsers that accept it; `nosniff` so a
    file is only ever run as what its extension says."""

    def __init__(self) -> None:
        router = Router(
            [
                Route("/graphiql/graphiql.min.css", graphiql_css, methods=["GET", "HEAD"]),
                Route(f"/{EMBEDDED}/{{name}}", graphiql_embedded, methods=["GET", "HEAD"]),
                Mount("/", app=StaticFiles(directory=STATIC)),
            ]
        )
        self.files: ASGIApp = GZipMiddleware(router, minimum_size=1024)

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
