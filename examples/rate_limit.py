"""A site-wide rate limit with a strict one on the login form. State lives in Redis when
``REDIS_URL`` is set (shared by every worker and machine), else in this process's memory.

Run it with ``uvicorn examples.rate_limit:app`` (or ``REDIS_URL=redis://127.0.0.1:6379/0
uvicorn examples.rate_limit:app --workers 4``), then:

    for i in 1 2 3 4 5 6; do curl -si -X POST http://127.0.0.1:8000/login | head -1; done
    curl -si http://127.0.0.1:8000/ | grep -i ratelimit
"""

from __future__ import annotations

import os

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

from middlewares import RateLimit, RateLimitMiddleware
from middlewares.stores import MemoryRateLimitStore, RedisRateLimitStore

REDIS_URL = os.environ.get("REDIS_URL")


async def home(request: Request) -> JSONResponse:
    # What the limiter decided is in the scope, for logs or a friendly message.
    decision = request.scope["middlewares.rate_limit"]
    return JSONResponse({"remaining": [state.remaining for state in decision.states]})


async def login(request: Request) -> PlainTextResponse:
    return PlainTextResponse("checked the password")


async def health(request: Request) -> PlainTextResponse:
    return PlainTextResponse("ok")


app = Starlette(
    routes=[
        Route("/", home),
        Route("/login", login, methods=["POST"]),
        Route("/health", health),
    ],
    middleware=[
        Middleware(
            RateLimitMiddleware,
            # Every client: 100 requests a minute, no more than 20 at once.
            application_limits=[RateLimit("100/minute", burst=20, name="site")],
            # On top of that, guessing passwords: 5 tries a minute, 20 an hour.
            route_limits={
                "/login": [
                    RateLimit("5/minute", name="login"),
                    RateLimit("20/hour", name="login-hourly"),
                ]
            },
            store=RedisRateLimitStore(REDIS_URL) if REDIS_URL else MemoryRateLimitStore(),
            exclude_paths=["/health"],
        )
    ],
)
