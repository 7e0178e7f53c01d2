"""TimeoutMiddleware in Starlette stacks and through a real uvicorn: the 504 on the wire, a
stalled stream cut (the client sees an incomplete body, never a clean end), event streams that
outlive the first-byte budget, and background tasks that outlive every budget."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

import anyio
import httpx
import pytest
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from middlewares._types import ASGIApp
from middlewares.timeout import TimeoutMiddleware

from .logs import collected
from .servers import serve

pytestmark = pytest.mark.anyio

BACKGROUND: list[str] = []


async def slow(request: Request) -> PlainTextResponse:
    await anyio.sleep(10)
    return PlainTextResponse("too late")  # pragma: no cover


async def broken(request: Request) -> PlainTextResponse:
    await anyio.sleep(0.01)
    raise RuntimeError("broken handler")


async def fast(request: Request) -> PlainTextResponse:
    async def after() -> None:
        await anyio.sleep(0.3)  # past every budget below
        BACKGROUND.append("done")

    return PlainTextResponse("ok", background=BackgroundTask(after))


async def stalled(request: Request) -> StreamingResponse:
    async def chunks() -> AsyncIterator[bytes]:
        yield b"first chunk\n"
        await anyio.sleep(10)
        yield b"never sent\n"  # pragma: no cover

    return StreamingResponse(chunks(), media_type="text/plain")


async def events(request: Request) -> StreamingResponse:
    async def chunks() -> AsyncIterator[bytes]:
        for index in range(10):
            await anyio.sleep(0.03)  # 0.3 s in all, ten times the first-byte budget
            yield b"data: %d\n\n" % index

    return StreamingResponse(chunks(), media_type="text/event-stream")


ROUTES = [
    Route("/slow", slow),
    Route("/broken", broken),
    Route("/fast", fast),
    Route("/stalled", stalled),
    Route("/events", events),
]


async def passthrough(
    request: Request, call_next: Callable[[Request], Awaitable[Response]]
) -> Response:
    return await call_next(request)


def stack(name: str) -> ASGIApp:
    timeout = Middleware(TimeoutMiddleware, timeout=0.1, idle_timeout=0.2, total_timeout=0.25)
    if name == "bare":
        return TimeoutMiddleware(
            Starlette(routes=ROUTES), timeout=0.1, idle_timeout=0.2, total_timeout=0.25
        )
    if name == "alone in Starlette":
        return Starlette(routes=ROUTES, middleware=[timeout])
    if name == "beside BaseHTTPMiddleware":
        return Starlette(
            routes=ROUTES,
            middleware=[timeout, Middleware(BaseHTTPMiddleware, dispatch=passthrough)],
        )
    return Starlette(routes=ROUTES, middleware=[Middleware(GZipMiddleware), timeout])


STACKS = ["bare", "alone in Starlette", "beside BaseHTTPMiddleware", "under GZip"]


@pytest.mark.parametrize("name", STACKS)
async def test_trap53_the_timeout_fires_whatever_else_is_in_the_stack(name: str) -> None:
    transport = httpx.ASGITransport(app=stack(name))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        response = await client.get("/slow")
    assert response.status_code == 504
    assert response.json()["status"] == 504


@pytest.mark.parametrize("name", STACKS)
async def test_trap49_an_early_exception_is_a_500_at_once_not_a_timeout(name: str) -> None:
    # The handler fails after 10 ms, within the 100 ms budget: a 500, not a 504 later.
    transport = httpx.ASGITransport(app=stack(name), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        response = await client.get("/broken")
    assert response.status_code == 500


@pytest.mark.parametrize("name", STACKS)
async def test_trap51_starlette_background_tasks_finish_past_the_timeout(name: str) -> None:
    BACKGROUND.clear()
    transport = httpx.ASGITransport(app=stack(name))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        response = await client.get("/fast")
    assert response.text == "ok"
    assert BACKGROUND == ["done"]


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    with serve(stack("alone in Starlette")) as base:
        yield base


@pytest.mark.server
def test_a_slow_handler_gets_504_over_the_wire(url: str) -> None:
    response = httpx.get(url + "/slow", timeout=10)
    assert response.status_code == 504
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["connection"] == "close"


def read_stream(url: str) -> tuple[int, bytes, str | None]:
    """Status, body bytes received, and how the body ended (None: a clean end)."""
    received = b""
    with httpx.stream("GET", url, timeout=10) as response:
        try:
            for chunk in response.iter_bytes():
                received += chunk
        except httpx.RemoteProtocolError as error:
            return response.status_code, received, str(error)
    return response.status_code, received, None


@pytest.mark.server
def test_trap52_a_stalled_stream_is_cut_and_the_client_can_tell(url: str) -> None:
    with collected(logging.getLogger("middlewares.timeout")) as records:
        status, received, error = read_stream(url + "/stalled")
    assert status == 200
    assert received == b"first chunk\n"
    assert error is not None
    assert "incomplete" in error
    assert "timed out after its response started" in records[-1].getMessage()


@pytest.mark.server
def test_trap48_an_event_stream_outlives_the_first_byte_budget(url: str) -> None:
    response = httpx.get(url + "/events", timeout=10)
    assert response.status_code == 200
    assert response.text.count("data:") == 10
