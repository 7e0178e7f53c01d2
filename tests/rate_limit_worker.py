"""The app each worker process of the multi-worker rate-limit test serves: ``N`` requests per
hour per client on the Redis at ``RATE_LIMIT_REDIS_URL``, failing closed so that an outage shows
up as 503 rather than as extra requests allowed."""

from __future__ import annotations

import os

from middlewares import RateLimitMiddleware
from middlewares._types import ASGIApp, Receive, Scope, Send
from middlewares.stores import RedisRateLimitStore

N = 10


async def ok(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


def make_app() -> ASGIApp:
    store = RedisRateLimitStore(os.environ["RATE_LIMIT_REDIS_URL"], timeout=5)
    return RateLimitMiddleware(
        ok,
        application_limits=[f"{N}/hour"],
        store=store,
        store_timeout=5,
        fail_open=False,
    )
