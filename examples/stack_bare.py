"""The production stack on a bare ASGI callable, no framework at all, in the order of the
ordering page (docs/ordering.md): every layer of the library, outermost first.

Needs the ``otel`` extra (``pip install 'middlewares[otel]'``). It expects a TLS-terminating
proxy on 127.0.0.1 in front; run it with ``uvicorn examples.stack_bare:app --lifespan on
--no-proxy-headers --no-access-log`` and play that proxy by hand:

    curl -i --compressed -H 'X-Forwarded-Proto: https' -H 'X-Forwarded-For: 203.0.113.7' \\
        -H 'Origin: https://app.example.com' http://127.0.0.1:8000/
    curl -i http://127.0.0.1:8000/             # plain http: 307 to https
    curl -i -H 'X-Forwarded-Proto: https' http://127.0.0.1:8000/report   # on a worker thread
"""

from __future__ import annotations

import json
import os
import secrets
import time

from middlewares import (
    AccessLogMiddleware,
    BlockingDetector,
    BodyLimitMiddleware,
    CompressionMiddleware,
    CORSMiddleware,
    CSRFMiddleware,
    HTTPSRedirectMiddleware,
    Layer,
    OffloadMiddleware,
    OpenTelemetryMiddleware,
    ProxyHeadersMiddleware,
    RateLimitMiddleware,
    RequestDecompressionMiddleware,
    RequestIDMiddleware,
    SecurityHeadersMiddleware,
    SessionMiddleware,
    TimeoutMiddleware,
    TimingMiddleware,
    TrustedHostMiddleware,
    compose,
    timing,
    trace_request_id,
)
from middlewares._types import Receive, Scope, Send
from middlewares.security_headers import JSON_API_PRESET

# In production set SESSION_SECRET, made with: python -c "import secrets; print(secrets.token_urlsafe(32))"
# Without it each process makes a random key: sessions end at restart, differ per worker.
SECRET = os.environ.get("SESSION_SECRET") or secrets.token_urlsafe(32)
# The addresses of the reverse proxies, the names this app serves, the page that calls it.
PROXIES = os.environ.get("TRUSTED_PROXIES", "127.0.0.1").split(",")
HOSTS = os.environ.get("ALLOWED_HOSTS", "127.0.0.1,localhost").split(",")
APP_ORIGINS = os.environ.get("APP_ORIGINS", "https://app.example.com").split(",")


async def endpoint(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != "http":
        return
    if scope["path"] == "/report":
        time.sleep(0.01)  # noqa: ASYNC251 - a sync driver call; this path runs on a worker
        payload: dict[str, object] = {"report": "ready"}
    else:
        session = scope["session"]
        with timing("work", desc="counting"):
            session["visits"] = session.get("visits", 0) + 1
        payload = {"visits": session["visits"], "items": list(range(200))}
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": json.dumps(payload).encode()})


app = compose(
    endpoint,
    Layer(ProxyHeadersMiddleware, trusted_hosts=PROXIES),
    Layer(AccessLogMiddleware),  # one JSON line per request on stdout
    Layer(OpenTelemetryMiddleware),  # free until a tracer provider is configured
    Layer(RequestIDMiddleware, generator=trace_request_id, log_exceptions=True),
    Layer(TimingMiddleware),
    Layer(SecurityHeadersMiddleware, **JSON_API_PRESET),
    Layer(TrustedHostMiddleware, allowed_hosts=HOSTS),
    Layer(HTTPSRedirectMiddleware),
    Layer(
        CORSMiddleware,
        allow_origins=APP_ORIGINS,
        allow_methods=["GET", "POST"],
        allow_credentials=True,
        expose_headers=["RateLimit", "RateLimit-Policy", "Retry-After"],
    ),
    Layer(RateLimitMiddleware, application_limits=["100/minute"]),
    Layer(TimeoutMiddleware, timeout=10),
    Layer(CompressionMiddleware),
    Layer(RequestDecompressionMiddleware),
    Layer(BodyLimitMiddleware, max_body_size=1024 * 1024),
    Layer(SessionMiddleware, secret_key=SECRET, https_only="auto"),
    Layer(CSRFMiddleware, trusted_origins=APP_ORIGINS),
    Layer(BlockingDetector),  # off unless MIDDLEWARES_DETECT_BLOCKING=1
    Layer(OffloadMiddleware, paths=["/report"]),
)
