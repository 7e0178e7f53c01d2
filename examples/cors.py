"""An API that a front end on another origin may call, with its WebSocket guarded too.

Run it with ``uvicorn examples.cors:app``, then from a page on http://localhost:5173:

    fetch("http://127.0.0.1:8000/items", {method: "PUT", headers: {"X-Request-Id": "1"},
                                          credentials: "include"})
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

from middlewares.cors import CORSMiddleware

TENANTS = {"https://shop.customer.test"}  # stands in for a table of customer domains


async def is_tenant(origin: str) -> bool:
    """Origins kept in a database: asked once per origin, then cached."""
    return origin in TENANTS


async def home(request: Request) -> PlainTextResponse:
    return PlainTextResponse("items API")


async def items(request: Request) -> JSONResponse:
    return JSONResponse({"items": [], "request_id": request.headers.get("x-request-id")})


async def live(websocket: WebSocket) -> None:
    # Handshakes from origins the policy refuses never get here.
    await websocket.accept()
    await websocket.send_json({"items": []})
    await websocket.close()


app = Starlette(
    routes=[
        Route("/", home),
        Route("/items", items, methods=["GET", "PUT"]),
        WebSocketRoute("/live", live),
    ],
    middleware=[
        Middleware(
            CORSMiddleware,
            allow_origins=[
                "https://app.example.com",
                "https://*.example.com",
                "http://localhost:*",
            ],
            allow_origin_predicate=is_tenant,
            allow_methods=["GET", "PUT"],
            allow_headers=["x-request-id"],
            allow_credentials=True,
            expose_headers=["x-request-id"],
            exclude_paths=["/health"],
        )
    ],
)
