"""Reading a request body with a byte limit: larger bodies are refused with 413, never buffered."""

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.types import Message, Receive


class BodyTooLarge(HTTPException):
    """The request body is larger than the limit (HTTP 413)."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body larger than {limit} bytes")
        self.limit = limit


async def read_body(request: Request, limit: int) -> bytes:
    """The raw body, at most `limit` bytes; raises `BodyTooLarge` (413) as soon as it is exceeded.

    A declared Content-Length over the limit is refused before reading anything; a chunked or
    understated body is counted as it streams, so memory stays bounded by the limit either way.
    The body is cached on the request, so `request.json()` works afterwards.
    """
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge(limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(limit)
        chunks.append(chunk)
    body = b"".join(chunks)
    request._body = body  # Starlette's own cache, read by request.body() and request.json()
    return body


def replay(body: bytes) -> Receive:
    """An ASGI `receive` that hands `body` once, for an inner app that reads the body itself."""
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive
