"""The full stack in a Litestar app, in the order of the ordering page (docs/ordering.md):
``DefineMiddleware`` passes the app by keyword, and the list runs outermost first.
``request.session`` reads the session this library loads.

Run it with ``uvicorn examples.stack_litestar:app --lifespan on --no-proxy-headers`` (Litestar
builds its middleware when the app is created, so a bad argument fails at import whatever the
lifespan mode).
"""

from __future__ import annotations

import os
import secrets
from typing import Any

from litestar import Litestar, Request, get
from litestar.middleware import DefineMiddleware

from middlewares import (
    CompressionMiddleware,
    CORSMiddleware,
    ProxyHeadersMiddleware,
    RequestIDMiddleware,
    SecurityHeadersMiddleware,
    SessionMiddleware,
    TimingMiddleware,
    get_request_id,
    timing,
)
from middlewares.security_headers import JSON_API_PRESET

# In production set SESSION_SECRET, made with: python -c "import secrets; print(secrets.token_urlsafe(32))"
# Without it each process makes a random key: sessions end at restart, differ per worker.
SECRET = os.environ.get("SESSION_SECRET") or secrets.token_urlsafe(32)
# The addresses of the reverse proxies in front: their X-Forwarded-* headers are believed.
PROXIES = os.environ.get("TRUSTED_PROXIES", "127.0.0.1").split(",")


@get("/")
async def home(request: Request[Any, Any, Any]) -> dict[str, Any]:
    with timing("work", desc="counting"):
        request.session["visits"] = request.session.get("visits", 0) + 1
    return {
        "visits": request.session["visits"],
        "request_id": get_request_id(),
        "items": list(range(200)),
    }


app = Litestar(
    route_handlers=[home],
    middleware=[
        DefineMiddleware(ProxyHeadersMiddleware, trusted_hosts=PROXIES),
        DefineMiddleware(RequestIDMiddleware),
        DefineMiddleware(TimingMiddleware),
        DefineMiddleware(SecurityHeadersMiddleware, **JSON_API_PRESET),
        DefineMiddleware(
            CORSMiddleware, allow_origins=["https://app.example.com"], allow_credentials=True
        ),
        DefineMiddleware(CompressionMiddleware),
        DefineMiddleware(SessionMiddleware, secret_key=SECRET, https_only="auto"),
    ],
)
