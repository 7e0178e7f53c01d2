"""CompressionMiddleware behind a real uvicorn: a streamed response's first chunk reaches the
client, decoded, while the endpoint is still waiting to send the rest."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractContextManager

import anyio.to_thread
import httpx
import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, StreamingResponse
from starlette.routing import Route

from middlewares.compression import CompressionMiddleware, RequestDecompressionMiddleware

pytestmark = pytest.mark.server

FIRST = b"".join(b'{"row": %d, "status": "ready"}\n' % i for i in range(40))
REST = b'{"row": "last"}\n' * 50

LiveServer = Callable[..., AbstractContextManager[str]]


def streaming_app(release: threading.Event) -> Starlette:
    async def rows(request: Request) -> StreamingResponse:
        async def generate() -> AsyncIterator[bytes]:
            yield FIRST
            # The rest waits until the test has read the first chunk: no sleeps, no timing.
            await anyio.to_thread.run_sync(release.wait, 10)
            yield REST

        return StreamingResponse(generate(), media_type="application/x-ndjson")

    async def events(request: Request) -> StreamingResponse:
        async def generate() -> AsyncIterator[bytes]:
            yield b"data: first\n\n"
            await anyio.to_thread.run_sync(release.wait, 10)
            yield b"data: second\n\n"

        return StreamingResponse(generate(), media_type="text/event-stream")

    async def upload(request: Request) -> PlainTextResponse:
        return PlainTextResponse(str(len(await request.body())))

    return Starlette(
        routes=[
            Route("/rows", rows),
            Route("/events", events),
            Route("/upload", upload, methods=["POST"]),
        ],
        middleware=[
            Middleware(CompressionMiddleware),
            Middleware(RequestDecompressionMiddleware, max_size=1024 * 1024),
        ],
    )


@pytest.mark.parametrize("coding", ["gzip", "br", "zstd"])
@pytest.mark.parametrize(
    ("path", "first", "rest"),
    [
        ("/rows", FIRST, REST),
        ("/events", b"data: first\n\n", b"data: second\n\n"),
    ],
)
def test_first_chunk_arrives_decoded_before_the_stream_ends(
    live_server: LiveServer, coding: str, path: str, first: bytes, rest: bytes
) -> None:
    release = threading.Event()
    with live_server(streaming_app(release)) as url, httpx.Client(timeout=10) as client:
        try:
            with client.stream("GET", url + path, headers={"accept-encoding": coding}) as response:
                assert response.headers["content-encoding"] == coding
                assert "content-length" not in response.headers
                received = b""
                chunks = response.iter_bytes()
                while len(received) < len(first):
                    received += next(chunks)
                assert received == first
                release.set()
                assert received + b"".join(chunks) == first + rest
        finally:
            release.set()


def test_a_compressed_bomb_upload_gets_413_over_the_wire(live_server: LiveServer) -> None:
    import gzip

    bomb = gzip.compress(b"\0" * (16 * 1024 * 1024))
    ok = gzip.compress(b"x" * 1000)
    with live_server(streaming_app(threading.Event())) as url, httpx.Client(timeout=10) as client:
        headers = {"content-encoding": "gzip"}
        assert client.post(url + "/upload", content=ok, headers=headers).text == "1000"
        response = client.post(url + "/upload", content=bomb, headers=headers)
        assert response.status_code == 413
