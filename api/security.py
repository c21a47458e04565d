"""Browser and transport safety: CORS for SPA front ends, and the checks a `/graphql` request
passes before any work (body size, JSON shape, no batches)."""

import json
from typing import Any

from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse

from api.body import read_body
from models.settings import Settings

# What a front end sends and may read; tokens travel in `Authorization`, never in cookies, so
# credentials (cookies) stay off.
CORS_HEADERS = ["Authorization", "Content-Type", "X-Request-ID"]
CORS_EXPOSED = ["Retry-After", "X-Request-ID"]
CORS_MAX_AGE = 600
JSON_FIELDS = {"variables": dict, "extensions": dict}
TEXT_FIELDS = ("query", "operationName")


def middleware(settings: Settings) -> list[Middleware]:
    """CORS only for the configured origins; none by default, so browsers of other sites get
    no CORS headers and cannot read any answer."""
    if not settings.cors_origins:
        return []
    return [
        Middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=CORS_HEADERS,
            expose_headers=CORS_EXPOSED,
            allow_credentials=False,
            max_age=CORS_MAX_AGE,
        )
    ]


class BadRequest(HTTPException):
    def __init__(self, detail: str, status_code: int = 400) -> None:
        super().__init__(status_code, detail)


def error_response(error: HTTPException) -> JSONResponse:
    """The GraphQL-shaped answer to a request refused before execution."""
    return JSONResponse(
        {"errors": [{"message": error.detail, "extensions": {"code": "BAD_REQUEST"}}]},
        status_code=error.status_code,
    )


def _decode(text: str | bytes, what: str) -> Any:
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as exc:  # bad JSON, bad UTF-8, absurd nesting
        raise BadRequest(f"{what} is not valid JSON (UTF-8)") from exc


def _check_operation(data: object) -> None:
    if isinstance(data, list):
        raise BadRequest("batched operations are not supported: send one operation per request")
    if not isinstance(data, dict):
        raise BadRequest('the body must be a JSON object: {"query": "...", "variables": {...}}')
    for name in TEXT_FIELDS:
        if data.get(name) is not None and not isinstance(data[name], str):
            raise BadRequest(f"`{name}` must be a string")
    for name, kind in JSON_FIELDS.items():
        if data.get(name) is not None and not isinstance(data[name], kind):
            raise BadRequest(f"`{name}` must be a JSON object")


def _media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


async def checked_body(request: Request, settings: Settings) -> bytes | None:
    """The body of a GraphQL POST (None for GET), refused with 413 when over
    `max_body_bytes`, 415 when not JSON and 400 when not one well-formed operation."""
    if request.method == "GET":
        for name in JSON_FIELDS:
            if name in request.query_params:
                _decode(request.query_params[name], f"`{name}`")
        return None
    if _media_type(request) != "application/json":
        raise BadRequest("send the operation as application/json", status_code=415)
    body = await read_body(request, settings.max_body_bytes)
    _check_operation(_decode(body, "the body"))
    return body
