"""A structured access log: one JSON line per request, written when the request is finished,
with the route template, status, time to first and last byte, and the request id.

Run it with ``uvicorn examples.access_log:app --no-access-log``; each request prints:

    {"request_id": "4f1c...", "method": "GET", "path": "/users/7", "route": "/users/{user_id}",
     "status": 200, "outcome": "ok", "ttfb_ms": 0.412, "ttlb_ms": 0.447, "duration_ms": 0.45}
"""

from __future__ import annotations

import json
import logging

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from middlewares.request_id import RequestIDMiddleware, get_request_id
from middlewares.timing import RequestTiming, TimingMiddleware

access_log = logging.getLogger("access")
if not access_log.handlers:
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(message)s"))
    access_log.addHandler(handler)
    access_log.setLevel(logging.INFO)
    access_log.propagate = False


def milliseconds(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 3)


def log_access(record: RequestTiming) -> None:
    line = {
        # The hook runs inside RequestIDMiddleware, so the request's id is still current.
        "request_id": get_request_id(),
        "method": record.method,
        "path": record.path,
        "route": record.template,
        "status": record.status,
        "outcome": record.outcome,
        "ttfb_ms": milliseconds(record.ttfb),
        "ttlb_ms": milliseconds(record.ttlb),
        "duration_ms": milliseconds(record.duration),
    }
    if record.error is not None:
        line["error"] = type(record.error).__name__
    access_log.info(json.dumps(line))


async def home(request: Request) -> PlainTextResponse:
    return PlainTextResponse("hello")


async def user(request: Request) -> PlainTextResponse:
    return PlainTextResponse(f"user {request.path_params['user_id']}")


app = RequestIDMiddleware(
    TimingMiddleware(
        Starlette(routes=[Route("/", home), Route("/users/{user_id:int}", user)]),
        on_timing=log_access,
        expose="never",
    )
)
