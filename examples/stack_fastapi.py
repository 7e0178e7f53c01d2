"""The full stack in a FastAPI app, in the order of the ordering page (docs/ordering.md).
``add_middleware`` puts each class *outside* the ones added before it, so the calls run
innermost first. ``ProxyHeadersMiddleware`` wraps the app itself, outside FastAPI's
``ServerErrorMiddleware``, so even its error page and log line see the real client.

Run it with ``uvicorn examples.stack_fastapi:app --lifespan on --no-proxy-headers`` (this
app's ``ProxyHeadersMiddleware`` replaces uvicorn's). With ``--lifespan on`` a bad middleware
argument stops the server at start-up; without it, the framework builds its middleware stack
on the first request and every request fails with a 500.
"""

from __future__ import annotations

import os
import secrets
from typing import Any

from fastapi import FastAPI, Request

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
from middlewares.security_headers import JSON_API_PRESET, fastapi_docs_overrides

# In production set SESSION_SECRET, made with: python -c "import secrets; print(secrets.token_urlsafe(32))"
# Without it each process makes a random key: sessions end at restart, differ per worker.
SECRET = os.environ.get("SESSION_SECRET") or secrets.token_urlsafe(32)
# The addresses of the reverse proxies in front: their X-Forwarded-* headers are believed.
PROXIES = os.environ.get("TRUSTED_PROXIES", "127.0.0.1").split(",")

api = FastAPI()


@api.get("/")
async def home(request: Request) -> dict[str, Any]:
    with timing("work", desc="counting"):
        session = get_session(request)
        session["visits"] = session.get("visits", 0) + 1
    return {
        "visits": session["visits"],
        "request_id": get_request_id(),
        "items": list(range(200)),
    }


api.add_middleware(SessionMiddleware, secret_key=SECRET, https_only="auto")  # innermost
api.add_middleware(CompressionMiddleware)
api.add_middleware(
    CORSMiddleware, allow_origins=["https://app.example.com"], allow_credentials=True
)
# /docs and /redoc load their assets from a CDN and run inline scripts.
api.add_middleware(SecurityHeadersMiddleware, **JSON_API_PRESET, overrides=fastapi_docs_overrides())
api.add_middleware(TimingMiddleware)
api.add_middleware(RequestIDMiddleware)
app = ProxyHeadersMiddleware(api, trusted_hosts=PROXIES)  # outermost
