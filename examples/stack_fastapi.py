"""The full stack in a FastAPI app. ``add_middleware`` puts each class *outside* the ones added
before it, so the calls run innermost first.

Run it with ``uvicorn examples.stack_fastapi:app``.
"""

from __future__ import annotations

import os
from typing import Any

from fastapi import FastAPI, Request

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

app = FastAPI()


@app.get("/")
async def home(request: Request) -> dict[str, Any]:
    with timing("work", desc="counting"):
        request.session["visits"] = request.session.get("visits", 0) + 1
    return {
        "visits": request.session["visits"],
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
