"""The full stack on a bare ASGI callable, no framework at all, in the order of the ordering
page.

Run it with ``uvicorn examples.stack_bare:app --lifespan on``, then ``curl -i --compressed
-H 'Origin: https://app.example.com' http://127.0.0.1:8000/``.
"""

from __future__ import annotations

import json
import os
import secrets

from middlewares import (
    CompressionMiddleware,
    CORSMiddleware,
    Layer,
    RequestDecompressionMiddleware,
    RequestIDMiddleware,
    SessionMiddleware,
    TimingMiddleware,
    compose,
    timing,
)
from middlewares._types import Receive, Scope, Send

# In production set SESSION_SECRET, made with: python -c "import secrets; print(secrets.token_urlsafe(32))"
# Without it each process makes a random key: sessions end at restart, differ per worker.
SECRET = os.environ.get("SESSION_SECRET") or secrets.token_urlsafe(32)


async def endpoint(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != "http":
        return
    session = scope["session"]
    with timing("work", desc="counting"):
        session["visits"] = session.get("visits", 0) + 1
    body = json.dumps({"visits": session["visits"], "items": list(range(200))}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": body})


app = compose(
    endpoint,
    Layer(RequestIDMiddleware, log_exceptions=True),
    Layer(TimingMiddleware),
    Layer(CORSMiddleware, allow_origins=["https://app.example.com"], allow_credentials=True),
    Layer(CompressionMiddleware),
    Layer(RequestDecompressionMiddleware),
    Layer(SessionMiddleware, secret_key=SECRET),
)
