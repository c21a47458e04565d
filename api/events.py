"""`POST /v1/events`: inbox events in batches, scope `ingest:write`, all or nothing, idempotent."""

import json

from sqlmodel.ext.asyncio.session import AsyncSession
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from api import ratelimit
from api.body import read_body
from api.graphql import principal_of
from api.observability import count_ingested
from api.writing import busy, store
from ingest import events
from ingest.writer import WriterBusy

SCOPE = "ingest:write"


def _error(status_code: int, code: str, message: str, **details: str) -> JSONResponse:
    headers = {"WWW-Authenticate": 'Bearer realm="wareports"'} if status_code == 401 else None
    return JSONResponse(
        {"errors": [{"message": message, "code": code, **details}]},
        status_code=status_code,
        headers=headers,
    )


async def post_events(request: Request) -> Response:
    principal = await principal_of(request)
    if principal is None:
        count_ingested("event", "unauthorized")
        return _error(401, "UNAUTHENTICATED", "missing, unknown or revoked bearer token")
    if not principal.has(SCOPE):
        count_ingested("event", "unauthorized")
        return _error(403, "FORBIDDEN", f"this operation needs the scope {SCOPE!r}", scope=SCOPE)
    request.state.principal = principal  # the access log line names the account
    limited = await ratelimit.enforce(request, principal, graphql=False)
    if limited is not None:
        return limited
    body = await read_body(request, request.app.state.settings.max_body_bytes)
    try:
        document = json.loads(body)
    except (ValueError, RecursionError) as exc:  # bad JSON or UTF-8, an integer of 4,301+ digits
        count_ingested("event", "invalid")
        return _error(400, "BAD_REQUEST", f"body is not JSON: {exc}")
    try:
        batch = events.validate_batch(document)

        async def work(session: AsyncSession) -> events.BatchResult:
            return await events.apply_batch(session, principal.account_id, batch)

        result = await store(request, work, len(batch), [principal.account_id])
    except WriterBusy as error:
        return busy(error)
    except events.BatchRejected as rejected:
        errors = [
            {"index": error.index, "field": error.field, "reason": error.reason}
            for error in rejected.errors
        ]
        count_ingested("event", "invalid")
        return JSONResponse({"errors": errors}, status_code=422)
    count_ingested("event", "stored", len(result.stored))
    count_ingested("event", "duplicate", len(result.duplicates))
    return JSONResponse({"stored": result.stored, "duplicates": result.duplicates})


routes = [Route("/v1/events", post_events, methods=["POST"])]
