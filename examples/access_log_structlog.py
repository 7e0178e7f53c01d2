"""Access lines rendered by structlog: the record's fields reach structlog's JSON renderer
through its standard-library bridge (``ProcessorFormatter`` with ``ExtraAdder``), on the same
handler and in the same shape as the app's own structlog events.

Needs ``pip install structlog``. Run it with
``uvicorn examples.access_log_structlog:app --no-access-log``, then
``curl http://127.0.0.1:8000/users/7``; stdout gets the app's event, then one access line:

    {"user_id": 7, "event": "user loaded", "level": "info", "logger": "shop.users", "timestamp": "2026-11-30T05:36:22.120514Z"}
    {"event": "http request", "level": "info", "logger": "shop.access", "timestamp": "2026-11-30T05:36:22.120787Z",
     "time": "2026-11-30T05:36:22.120Z", "method": "GET", "path": "/users/7", "route": "/users/{user_id}",
     "status": 200, "outcome": "ok", "ttfb_ms": 0.41, "duration_ms": 0.45, "bytes_sent": 6, ..., "user_id": 7}
"""

from __future__ import annotations

import logging
import sys

import structlog
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from middlewares import AccessLogMiddleware, RequestIDMiddleware

# What every line gets, whether it comes from structlog or from a stdlib logger.
shared: list[structlog.typing.Processor] = [
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
]
structlog.configure(
    processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
    logger_factory=structlog.stdlib.LoggerFactory(),
    wrapper_class=structlog.stdlib.BoundLogger,
)

handler = logging.StreamHandler(sys.stdout)
handler.setFormatter(
    structlog.stdlib.ProcessorFormatter(
        # Records from stdlib loggers (the access log): their ``extra`` fields join the event.
        foreign_pre_chain=[*shared, structlog.stdlib.ExtraAdder()],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.JSONRenderer(),
        ],
    )
)
shop = logging.getLogger("shop")  # the app's loggers: shop.access, shop.users...
if not shop.handlers:
    shop.addHandler(handler)
    shop.setLevel(logging.INFO)
    shop.propagate = False

users = structlog.get_logger("shop.users")


async def home(request: Request) -> PlainTextResponse:
    return PlainTextResponse("hello")


async def user(request: Request) -> PlainTextResponse:
    user_id = request.path_params["user_id"]
    users.info("user loaded", user_id=user_id)
    request.state.access_log = {"user_id": user_id}  # a field of this request's access line
    return PlainTextResponse(f"user {user_id}")


app = Starlette(
    routes=[Route("/", home), Route("/users/{user_id:int}", user)],
    middleware=[
        # The fields travel as the record's ``extra``; the message is only the event name.
        Middleware(AccessLogMiddleware, logger="shop.access", format=lambda record: "http request"),
        Middleware(RequestIDMiddleware),
    ],
)
