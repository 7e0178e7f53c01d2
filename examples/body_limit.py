"""Uploads bounded before the app runs: 1 MiB by default, 50 MiB on the upload route, a
WebSocket message limit, and a 408 for a client that stops sending its body.

Run it with ``uvicorn examples.body_limit:app``, then:

    curl -d @big.json http://127.0.0.1:8000/items                # > 1 MiB: 413 at once
    curl -T video.mp4 http://127.0.0.1:8000/uploads/video.mp4    # up to 50 MiB, streamed
    curl -H 'Expect: 100-continue' -H 'Content-Length: 999999999' -X POST \\
        http://127.0.0.1:8000/items                               # 413, no 100 Continue
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

from middlewares.body_limit import BodyLimitMiddleware


async def home(request: Request) -> PlainTextResponse:
    return PlainTextResponse("POST JSON to /items, PUT files to /uploads/{name}")


async def items(request: Request) -> JSONResponse:
    # A body over the limit never gets here: the 413 was sent before the route ran.
    return JSONResponse({"received": len(await request.body())})


async def upload(request: Request) -> JSONResponse:
    size = 0
    async for chunk in request.stream():  # counted as it arrives, cut at 50 MiB
        size += len(chunk)
    return JSONResponse({"name": request.path_params["name"], "bytes": size})


async def chat(websocket: WebSocket) -> None:
    await websocket.accept()
    async for text in websocket.iter_text():  # a message over 64 KiB closes with 1009
        await websocket.send_text(text)


app = Starlette(
    routes=[
        Route("/", home),
        Route("/items", items, methods=["POST"]),
        Route("/uploads/{name}", upload, methods=["PUT"]),
        WebSocketRoute("/chat", chat),
    ],
    middleware=[
        Middleware(
            BodyLimitMiddleware,
            max_body_size=1024 * 1024,
            path_limits={"/uploads/{name}": 50 * 1024 * 1024},
            body_timeout=30,
            websocket_max_message_size=64 * 1024,
        )
    ],
)
