"""Per-token rate limiting with `limits`: in memory by default, in Redis when
`WAREPORTS_REDIS_URL` is set, so that several workers and hosts share one budget per token."""

import logging
import math
import time
from typing import Any

from limits import RateLimitItem, parse_many
from limits.aio.strategies import MovingWindowRateLimiter
from limits.errors import StorageError
from limits.storage import storage_from_string
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from models.principal import Principal
from models.settings import Settings

log = logging.getLogger("wareports.ratelimit")

KEY_PREFIX = "wareports"
# After a storage failure the limiter stands aside this long instead of making every request
# wait for the storage's timeouts (and logging each of them).
OUTAGE_PAUSE_SECONDS = 10.0


def storage_uri(redis_url: str | None) -> str:
    """The `limits` async storage URI for a Redis URL (`redis://host:6379/0`), memory without."""
    if not redis_url:
        return "async+memory://"
    return redis_url if redis_url.startswith("async+") else f"async+{redis_url}"


class RateLimiter:
    """A moving window per key (a token, a client address): at most N requests in any period,
    whatever the worker. `namespace` keeps the kinds of keys apart in a shared storage."""

    def __init__(
        self, rate_limit: str, redis_url: str | None = None, namespace: str = "token"
    ) -> None:
        self.items: list[RateLimitItem] = parse_many(rate_limit)
        self.namespace = namespace
        uri = storage_uri(redis_url)
        options: dict[str, Any] = {}
        if not uri.startswith("async+memory"):
            # Short timeouts: a Redis that does not answer must not hold requests up.
            options = {"key_prefix": KEY_PREFIX, "connect_timeout": 0.5, "stream_timeout": 0.5}
        # Storage errors are wrapped so that an unreachable Redis is one exception type to catch.
        storage = storage_from_string(uri, wrap_exceptions=True, **options)
        self.strategy = MovingWindowRateLimiter(storage)
        self.paused_until = 0.0

    @classmethod
    def from_settings(cls, settings: Settings) -> "RateLimiter":
        return cls(settings.rate_limit, settings.redis_url)

    async def retry_after(self, key: str) -> int | None:
        """Counts one request for `key`; the seconds to wait when over a limit, else None."""
        if time.monotonic() < self.paused_until:
            return None
        try:
            for item in self.items:
                if not await self.strategy.hit(item, self.namespace, key):
                    stats = await self.strategy.get_window_stats(item, self.namespace, key)
                    return max(1, math.ceil(stats.reset_time - time.time()))
        except StorageError:
            # The limiter protects the service; an outage of its storage must not take the API
            # down with it, so requests pass (and the outage is logged) until it is back.
            self.paused_until = time.monotonic() + OUTAGE_PAUSE_SECONDS
            log.exception(
                "rate-limit storage unavailable; requests pass unlimited for %.0f s",
                OUTAGE_PAUSE_SECONDS,
            )
        return None

    async def reset(self, key: str) -> None:
        for item in self.items:
            await self.strategy.clear(item, self.namespace, key)


def token_key(principal: Principal) -> str:
    return str(principal.token_id)


def rate_limited(retry_after: int, graphql: bool = True) -> JSONResponse:
    """429 in the endpoint's error shape: GraphQL's (`extensions.code`) or /v1/events' (`code`)."""
    error: dict[str, object] = {
        "message": f"rate limit exceeded for this token; retry in {retry_after} s"
    }
    details = {"code": "RATE_LIMITED", "retryAfter": retry_after}
    error.update({"extensions": details} if graphql else details)
    return JSONResponse(
        {"errors": [error]}, status_code=429, headers={"Retry-After": str(retry_after)}
    )


async def enforce(request: Request, principal: Principal, graphql: bool = True) -> Response | None:
    """A 429 response when the principal's token is over its limit, else None (hit counted)."""
    limiter: RateLimiter = request.app.state.rate_limiter
    retry_after = await limiter.retry_after(token_key(principal))
    return None if retry_after is None else rate_limited(retry_after, graphql)
