"""`/graphql`: bearer-token auth in front of Strawberry's ASGI app, one session per request."""

import uuid
from functools import lru_cache
from typing import Any

import orjson
import strawberry
from cross_web import HTTPException as StrawberryHTTPException
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.types import Receive, Scope, Send
from strawberry.asgi import GraphQL

from api import ratelimit, web
from api.accounts import authenticate, use_to_record
from api.body import replay
from api.observability import OperationMetrics
from api.security import checked_body, error_response
from api.writing import record_use_later
from models.db import session_factory
from models.principal import Principal
from models.settings import Settings
from schema import build_schema
from schema.context import Context
from schema.limits import QueryLimits


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def unauthenticated(message: str) -> JSONResponse:
    return JSONResponse(
        {"errors": [{"message": message, "extensions": {"code": "UNAUTHENTICATED"}}]},
        status_code=401,
        headers={"WWW-Authenticate": 'Bearer realm="wareports"'},
    )


async def principal_of(request: Request) -> Principal | None:
    """The bearer token's principal (`/graphql`, `/v1/events`), or None. A reading session,
    which never waits for the ingestion writer's transaction; the token's `last_used_at` (at
    most once a minute) is left to the writer (`api.writing.record_use_later`)."""
    token = bearer_token(request)
    if token is None:
        return None
    async with session_factory(request.app.state.engine)() as session:
        principal = await authenticate(session, token)
    if principal is not None and use_to_record(principal):
        record_use_later(request, principal)
    return principal


def query_limits(settings: Settings) -> QueryLimits:
    return QueryLimits(
        max_depth=settings.max_query_depth,
        max_aliases=settings.max_query_aliases,
        max_tokens=settings.max_query_tokens,
        max_cost=settings.max_query_cost,
        max_range_days=settings.max_range_days,
    )


@lru_cache
def schema_for(limits: QueryLimits, introspection: bool) -> strawberry.Schema:
    """One schema per configuration (apps built with the same settings share it)."""
    return build_schema(limits, introspection=introspection, observers=[OperationMetrics])


# Strawberry's own refusals (no query, an unknown operationName, a mutation over GET) are plain
# text; every /graphql error is a GraphQL error with a code instead.
HTTP_CODES = {400: "BAD_REQUEST", 404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED"}
METHODS = ("GET", "HEAD", "POST")


def graphql_error(status_code: int, message: str, **headers: str) -> JSONResponse:
    code = HTTP_CODES.get(status_code, "BAD_REQUEST")
    return JSONResponse(
        {"errors": [{"message": message, "extensions": {"code": code}}]},
        status_code=status_code,
        headers=headers or None,
    )


class WareportsGraphQL(GraphQL[Context, None]):
    def encode_json(self, data: object) -> str | bytes:
        """The answer as UTF-8 JSON by orjson (a year's summary is most of a megabyte: the
        standard library's encoder took a tenth of its time); what orjson refuses (an integer
        beyond 64 bits) is encoded as Strawberry does."""
        try:
            return orjson.dumps(data)
        except TypeError:
            return super().encode_json(data)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            response = await self.run(Request(scope, receive))
        except StrawberryHTTPException as error:
            response = graphql_error(error.status_code, error.reason)
        await response(scope, receive, send)

    async def get_context(self, request: Any, response: Any) -> Context:
        state = request.state
        return Context(
            request=request,
            response=response,
            principal=state.principal,
            session=state.session,
            settings=request.app.state.settings,
            request_id=state.request_id,
            clock=request.app.state.clock,
        )


class GraphQLEndpoint:
    """Serves GraphiQL to browsers and answers authenticated GraphQL requests."""

    def __init__(self, settings: Settings) -> None:
        self.graphql = WareportsGraphQL(
            schema_for(query_limits(settings), settings.graphiql),
            graphql_ide="graphiql" if settings.graphiql else None,
        )
        self.graphiql = settings.graphiql
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        state = request.state
        if not hasattr(state, "request_id"):
            state.request_id = uuid.uuid4().hex
        if request.method not in METHODS:
            refused = graphql_error(405, "use GET or POST", Allow=", ".join(METHODS))
            await refused(scope, receive, send)
            return
        if self._is_ide_page(request):
            if not self.graphiql:
                await graphql_error(404, "GraphiQL is disabled")(scope, receive, send)
                return
            await web.graphiql_page()(scope, receive, send)  # served from the package
            return
        if bearer_token(request) is None:
            await unauthenticated("missing bearer token")(scope, receive, send)
            return
        try:
            # Size and shape first: a refused body costs no database round trip.
            body = await checked_body(request, self.settings)
        except HTTPException as error:
            await error_response(error)(scope, receive, send)
            return
        principal = await principal_of(request)
        if principal is None:
            await unauthenticated("unknown or revoked token")(scope, receive, send)
            return
        limited = await ratelimit.enforce(request, principal)
        if limited is not None:
            await limited(scope, receive, send)
            return
        if body is not None:
            receive = replay(body)  # the body was consumed above; Strawberry reads it again
        state.principal = principal
        async with session_factory(request.app.state.read_engine, shared=True)() as session:
            state.session = session
            await self.graphql(scope, receive, send)

    def _is_ide_page(self, request: Request) -> bool:
        return self.graphql.should_render_graphql_ide(self.graphql.request_adapter_class(request))
