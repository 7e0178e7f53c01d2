"""Compress responses with zstd, br or gzip, stream server-sent events compressed, and accept
compressed request bodies.

    uvicorn examples.compression:app

    curl -s --compressed -D- http://127.0.0.1:8000/          # zstd, br or gzip, as curl asks
    curl -sN --compressed http://127.0.0.1:8000/events        # events arrive one by one
    printf '{"hello": "world"}' | gzip | curl -s --data-binary @- \\
        -H 'content-encoding: gzip' http://127.0.0.1:8000/echo
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import anyio
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, StreamingResponse
from starlette.routing import Route

from middlewares.compression import CompressionMiddleware, RequestDecompressionMiddleware


async def homepage(request: Request) -> JSONResponse:
    return JSONResponse(
        [{"id": i, "name": f"item {i}", "in_stock": i % 3 != 0} for i in range(200)]
    )


async def events(request: Request) -> StreamingResponse:
    async def tick() -> AsyncIterator[str]:
        for n in range(5):
            yield f"data: tick {n}\n\n"
            await anyio.sleep(1)

    return StreamingResponse(tick(), media_type="text/event-stream")


async def echo(request: Request) -> PlainTextResponse:
    body = await request.body()  # already decoded, at most max_size bytes
    return PlainTextResponse(f"received {len(body)} bytes: {body[:100]!r}")


app = Starlette(
    routes=[Route("/", homepage), Route("/events", events), Route("/echo", echo, methods=["POST"])],
    middleware=[
        # Outermost: it encodes whatever the layers inside produce.
        Middleware(CompressionMiddleware, minimum_size=500, exclude_paths=["/health"]),
        Middleware(RequestDecompressionMiddleware, max_size=1024 * 1024),
    ],
)
