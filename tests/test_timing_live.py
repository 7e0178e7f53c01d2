"""TimingMiddleware behind a real uvicorn: the header on the wire, a streamed response whose
last byte comes later than its first, and a client that hangs up mid-stream."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractContextManager

import anyio
import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import StreamingResponse
from starlette.routing import Route

from middlewares.timing import RequestTiming, TimingMiddleware, timing

LiveServer = Callable[..., AbstractContextManager[str]]


def streaming_app(seen: list[RequestTiming], done: threading.Event) -> TimingMiddleware:
    async def stream(request: Request) -> StreamingResponse:
        async def chunks() -> AsyncIterator[bytes]:
            for index in range(200):
                if await request.is_disconnected():
                    return
                async with timing("chunk"):
                    await anyio.sleep(0.005)
                yield b"chunk %d\n" % index
                if index == 1 and request.query_params.get("short"):
                    return

        return StreamingResponse(chunks(), media_type="text/plain")

    def record(timing_record: RequestTiming) -> None:
        seen.append(timing_record)
        done.set()

    return TimingMiddleware(Starlette(routes=[Route("/stream", stream)]), on_timing=record)


def test_streamed_response_over_uvicorn(live_server: LiveServer) -> None:
    seen: list[RequestTiming] = []
    done = threading.Event()
    with live_server(streaming_app(seen, done)) as url:
        response = httpx.get(f"{url}/stream?short=1", timeout=10)
        assert done.wait(10)
    assert response.text == "chunk 0\nchunk 1\n"
    assert response.headers["server-timing"].startswith("app;dur=")
    [record] = seen
    assert (record.status, record.outcome, record.template) == (200, "ok", "/stream")
    assert record.ttfb is not None
    assert record.ttlb is not None
    assert record.ttfb < record.ttlb  # two 5 ms chunks came after the headers
    assert [m.name for m in record.metrics] == ["chunk", "chunk"]


def test_client_hanging_up_mid_stream_is_499(live_server: LiveServer) -> None:
    seen: list[RequestTiming] = []
    done = threading.Event()
    with live_server(streaming_app(seen, done)) as url:
        with httpx.stream("GET", f"{url}/stream", timeout=10) as response:
            first = next(response.iter_raw())
        assert done.wait(10)
    assert first.startswith(b"chunk 0")
    [record] = seen
    assert (record.status, record.outcome, record.ttlb) == (499, "disconnect", None)
    assert record.ttfb is not None
