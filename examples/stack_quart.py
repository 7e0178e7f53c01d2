"""The full stack around a Quart app, in the order of the ordering page (docs/ordering.md).
Quart's own ``session`` is a separate mechanism; this library's session is
``request.scope["session"]``.

Run it with ``uvicorn examples.stack_quart:app --lifespan on --no-proxy-headers``.
"""

from __future__ import annotations

import os
import secrets
from typing import Any

from quart import Quart, request

from middlewares import (
    CompressionMiddleware,
    CORSMiddleware,
    Layer,
    ProxyHeadersMiddleware,
    RequestIDMiddleware,
    SecurityHeadersMiddleware,
    SessionMiddleware,
    TimingMiddleware,
    compose,
    get_request_id,
    timing,
)
from middlewares.security_headers import JSON_API_PRESET

# In production set SESSION_SECRET, made with: python -c "import secrets; print(secrets.token_urlsafe(32))"
# Without it each process makes a random key: sessions end at restart, differ per worker.
SECRET = os.environ.get("SESSION_SECRET") or secrets.token_urlsafe(32)
# The addresses of the reverse proxies in front: their X-Forwarded-* headers are believed.
PROXIES = os.environ.get("TRUSTED_PROXIES", "127.0.0.1").split(",")

quart_app = Quart(__name__)


@quart_app.get("/")
async def home() -> dict[str, Any]:
    session = request.scope["session"]
    with timing("work", desc="counting"):
        session["visits"] = session.get("visits", 0) + 1
    return {"visits": session["visits"], "request_id": get_request_id(), "items": list(range(200))}


# Wrapping asgi_app keeps Quart's own lifespan and test client working.
quart_app.asgi_app = compose(  # type: ignore[method-assign]
    quart_app.asgi_app,
    Layer(ProxyHeadersMiddleware, trusted_hosts=PROXIES),
    Layer(RequestIDMiddleware),
    Layer(TimingMiddleware),
    Layer(SecurityHeadersMiddleware, **JSON_API_PRESET),
    Layer(CORSMiddleware, allow_origins=["https://app.example.com"], allow_credentials=True),
    Layer(CompressionMiddleware),
    Layer(SessionMiddleware, secret_key=SECRET, https_only="auto"),
)
app = quart_app
