"""The full stack in a Starlette app, listed outermost first in ``middleware=[...]``, in the
order of the ordering page (docs/ordering.md). ``ProxyHeadersMiddleware`` wraps the app
itself, outside Starlette's ``ServerErrorMiddleware``, so even its error page and log line
see the real client.

Run it with ``uvicorn examples.stack_starlette:app --lifespan on --no-proxy-headers`` (this
app's ``ProxyHeadersMiddleware`` replaces uvicorn's). With ``--lifespan on`` a bad middleware
argument stops the server at start-up; without it, the framework builds its middleware stack
on the first request and every request fails with a 500.
"""

from __future__ import annotations

import os
import secrets

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from middlewares import (
    CompressionMiddleware,
    CORSMiddleware,
    ProxyHeadersMiddleware,
    RequestIDMiddleware,
    SecurityHeadersMiddleware,
    SessionMiddleware,
    TimingMiddleware,
    get_request_id,
    get_session,
    timing,
)
from middlewares.security_headers import JSON_API_PRESET

# In production set SESSION_SECRET, made with: python -c "import secrets; print(secrets.token_urlsafe(32))"
# Without it each process makes a random key: sessions end at restart, differ per worker.
SECRET = os.environ.get("SESSION_SECRET") or secrets.token_urlsafe(32)
# The addresses of the reverse proxies in front: their X-Forwarded-* headers are believed.
PROXIES = os.environ.get("TRUSTED_PROXIES", "127.0.0.1").split(",")


async def home(request: Request) -> JSONResponse:
    with timing("work", desc="counting"):
        session = get_session(request)
        session["visits"] = session.get("visits", 0) + 1
    return JSONResponse(
        {
            "visits": session["visits"],
            "request_id": get_request_id(),
            "items": list(range(200)),
        }
    )


app = ProxyHeadersMiddleware(
    Starlette(
        routes=[Route("/", home)],
        middleware=[
            Middleware(RequestIDMiddleware),
            Middleware(TimingMiddleware),
            Middleware(SecurityHeadersMiddleware, **JSON_API_PRESET),
            Middleware(
                CORSMiddleware, allow_origins=["https://app.example.com"], allow_credentials=True
            ),
            Middleware(CompressionMiddleware),
            Middleware(SessionMiddleware, secret_key=SECRET, https_only="auto"),
        ],
    ),
    trusted_hosts=PROXIES,
)
