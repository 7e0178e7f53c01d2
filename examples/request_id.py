"""Request ids in every log line and in the ``X-Request-ID`` response header, accepting the id
of the load balancer in front (and nobody else's).

Run it with ``uvicorn examples.request_id:app``, then
``curl -i -H "X-Request-ID: abc-123" http://127.0.0.1:8000/`` (curl on 127.0.0.1 is trusted
here, so its id is kept; an id from another address, or a malformed one, is replaced).
"""

from __future__ import annotations

import logging

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from middlewares.request_id import RequestIDFilter, RequestIDMiddleware, get_request_id

log = logging.getLogger("example")
if not log.handlers:
    handler = logging.StreamHandler()
    handler.addFilter(RequestIDFilter())  # sets record.request_id ("-" outside requests)
    handler.setFormatter(logging.Formatter("%(levelname)s [%(request_id)s] %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False


async def home(request: Request) -> JSONResponse:
    log.info("serving %s", request.url.path)
    # The same id is in the context variable, the scope and the response header.
    return JSONResponse(
        {"request_id": get_request_id(), "in_scope": request.scope["middlewares.request_id"]}
    )


app = Starlette(
    routes=[Route("/", home)],
    middleware=[
        Middleware(
            RequestIDMiddleware,
            trusted_proxies=["127.0.0.1", "::1", "10.0.0.0/8"],  # your load balancers
        )
    ],
)
