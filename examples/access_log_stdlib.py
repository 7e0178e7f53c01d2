"""One JSON access line per request with the standard library's ``logging``: request ids, the
user the app identified (through ``request.state``), health checks left out unless they fail.

Run it with ``uvicorn examples.access_log_stdlib:app --no-access-log`` (uvicorn's own access
line would be a second, poorer line per request), then ``curl 'http://127.0.0.1:8000/users/7?token=abc'``:

    {"time": "2026-11-30T05:36:22.123Z", "method": "GET", "path": "/users/7",
     "query": "token=REDACTED", "route": "/users/{user_id}", "protocol": "HTTP/1.1",
     "status": 200, "outcome": "ok", "ttfb_ms": 0.41, "duration_ms": 0.45,
     "bytes_received": 0, "bytes_sent": 6, "client": "127.0.0.1", "user_agent": "curl/8.5.0",
     "request_id": "4f1c...", "user_id": 7}
"""

from __future__ import annotations

import logging

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from middlewares import AccessLogMiddleware, RequestIDMiddleware

access = logging.getLogger("access")
if not access.handlers:
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(message)s"))  # the message is the JSON line
    access.addHandler(handler)
    access.setLevel(logging.INFO)
    access.propagate = False


async def home(request: Request) -> PlainTextResponse:
    return PlainTextResponse("hello")


async def user(request: Request) -> PlainTextResponse:
    user_id = request.path_params["user_id"]
    request.state.access_log = {"user_id": user_id}  # extra fields for this request's line
    return PlainTextResponse(f"user {user_id}")


async def health(request: Request) -> PlainTextResponse:
    return PlainTextResponse("ok")


app = Starlette(
    routes=[Route("/", home), Route("/users/{user_id:int}", user), Route("/health", health)],
    middleware=[
        Middleware(AccessLogMiddleware, logger=access, exclude_paths=["/health"]),
        Middleware(RequestIDMiddleware),
    ],
)
