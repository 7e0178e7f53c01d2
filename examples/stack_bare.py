"""The full stack on a bare ASGI callable, no framework at all.

Run it with ``uvicorn examples.stack_bare:app``, then ``curl -i --compressed
-H 'Origin: https://app.example.com' http://127.0.0.1:8000/``.
"""

from __future__ import annotations

import json
import os

from middlewares import (
    CompressionMiddleware,
    CORSMiddleware,
    Layer,
    RequestIDMiddleware,
    SessionMiddleware,
    TimingMiddleware,
    compose,
    timing,
)
from middlewares._types import Receive, Scope, Send

SECRET = os.environ.get("SESSION_SECRET", "change-me: a long random string")


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
    Layer(RequestIDMiddleware),
    Layer(TimingMiddleware),
    Layer(CORSMiddleware, allow_origins=["https://app.example.com"], allow_credentials=True),
    Layer(CompressionMiddleware),
    Layer(SessionMiddleware, secret_key=SECRET),
)
