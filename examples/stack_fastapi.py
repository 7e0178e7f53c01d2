"""The full stack in a FastAPI app. ``add_middleware`` puts each class *outside* the ones added
before it, so the calls run innermost first.

Run it with ``uvicorn examples.stack_fastapi:app --lifespan on``: then a
bad middleware argument stops the server at start-up; without it, the framework builds its
middleware stack on the first request and every request fails with a 500.
"""

from __future__ import annotations

import os
import secrets
from typing import Any

from fastapi import FastAPI, Request

from middlewares import (
    CompressionMiddleware,
    CORSMiddleware,
    RequestIDMiddleware,
    SessionMiddleware,
    TimingMiddleware,
    get_request_id,
    get_session,
    timing,
)

# In production set SESSION_SECRET, made with: python -c "import secrets; print(secrets.token_urlsafe(32))"
# Without it each process makes a random key: sessions end at restart, differ per worker.
SECRET = os.environ.get("SESSION_SECRET") or secrets.token_urlsafe(32)

app = FastAPI()


@app.get("/")
async def home(request: Request) -> dict[str, Any]:
    with timing("work", desc="counting"):
        session = get_session(request)
        session["visits"] = session.get("visits", 0) + 1
    return {
        "visits": session["visits"],
        "request_id": get_request_id(),
        "items": list(range(200)),
    }


app.add_middleware(SessionMiddleware, secret_key=SECRET)  # innermost
app.add_middleware(CompressionMiddleware)
app.add_middleware(
    CORSMiddleware, allow_origins=["https://app.example.com"], allow_credentials=True
)
app.add_middleware(TimingMiddleware)
app.add_middleware(RequestIDMiddleware)  # outermost
