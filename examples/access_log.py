"""An access log built from TimingMiddleware's hook: the same record AccessLogMiddleware writes
(``record_from_timing`` and ``AccessLogMiddleware`` share ``build_record``), for an app that
already reports timings and wants one JSON line per request from the same hook.

Run it with ``uvicorn examples.access_log:app --no-access-log``; each request prints:

    {"method": "GET", "path": "/users/7", "route": "/users/{user_id}", "protocol": "HTTP/1.1",
     "status": 200, "outcome": "ok", "ttfb_ms": 0.412, "duration_ms": 0.447,
     "client": "127.0.0.1", "user_agent": "curl/8.5.0", "request_id": "4f1c..."}

``examples/access_log_stdlib.py`` does the same with ``AccessLogMiddleware``, which also counts
the bytes and logs the WebSocket connections.
"""

from __future__ import annotations

import logging

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from middlewares.access_log import format_json, record_from_timing
from middlewares.request_id import RequestIDMiddleware
from middlewares.timing import RequestTiming, TimingMiddleware

access_log = logging.getLogger("access")
if not access_log.handlers:
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(message)s"))
    access_log.addHandler(handler)
    access_log.setLevel(logging.INFO)
    access_log.propagate = False


def log_access(timing: RequestTiming) -> None:
    access_log.info(format_json(record_from_timing(timing)))


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
