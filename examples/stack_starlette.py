"""The full stack in a Starlette app, listed outermost first in ``middleware=[...]``.

Run it with ``uvicorn examples.stack_starlette:app``.
"""

from __future__ import annotations

import os

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from middlewares import (
    CompressionMiddleware,
    CORSMiddleware,
    RequestIDMiddleware,
    SessionMiddleware,
    TimingMiddleware,
    get_request_id,
    timing,
)

SECRET = os.environ.get("SESSION_SECRET", "change-me: a long random string")


async def home(request: Request) -> JSONResponse:
    with timing("work", desc="counting"):
        request.session["visits"] = request.session.get("visits", 0) + 1
    return JSONResponse(
        {
            "visits": request.session["visits"],
            "request_id": get_request_id(),
            "items": list(range(200)),
        }
    )


app = Starlette(
    routes=[Route("/", home)],
    middleware=[
        Middleware(RequestIDMiddleware),
        Middleware(TimingMiddleware),
        Middleware(
            CORSMiddleware, allow_origins=["https://app.example.com"], allow_credentials=True
        ),
        Middleware(CompressionMiddleware),
        Middleware(SessionMiddleware, secret_key=SECRET),
    ],
)
