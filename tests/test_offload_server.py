"""OffloadMiddleware under a real uvicorn: a blocked handler never stalls other clients."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, StreamingResponse
from starlette.routing import Route

from middlewares.offload import OffloadMiddleware, Pool

pytestmark = pytest.mark.server

Serve = Callable[..., AbstractContextManager[str]]


def blocking_app(entered: threading.Event, release: threading.Event) -> Starlette:
    async def block(request: Request) -> PlainTextResponse:
        entered.set()
        release.wait(10)  # a sync driver call inside an async handler
        return PlainTextResponse("unblocked")

    async def fast(request: Request) -> PlainTextResponse:
        return PlainTextResponse("fast")

    async def echo(request: Request) -> StreamingResponse:
        body = await request.body()

        async def stream() -> object:
            for start in range(0, len(body), 65536):
                yield body[start : start + 65536]

        return StreamingResponse(stream())  # type: ignore[arg-type]

    return Starlette(
        routes=[
            Route("/block", block),
            Route("/fast", fast),
            Route("/echo", echo, methods=["POST"]),
        ]
    )


def test_blocked_handler_while_other_clients_keep_flowing(live_server: Serve) -> None:
    entered, release = threading.Event(), threading.Event()
    app = OffloadMiddleware(blocking_app(entered, release), pool=Pool("server", max_workers=2))
    with live_server(app) as url, ThreadPoolExecutor(1) as client_thread:
        blocked = client_thread.submit(httpx.get, url + "/block", timeout=20)
        assert entered.wait(10)
        # The handler above holds its worker; the server's loop still answers everyone else.
        for _ in range(5):
            assert httpx.get(url + "/fast", timeout=10).text == "fast"
        assert not blocked.done()
        release.set()
        assert blocked.result().text == "unblocked"


def test_streams_request_and_response_through_the_bridge(live_server: Serve) -> None:
    app = OffloadMiddleware(blocking_app(threading.Event(), threading.Event()))
    body = b"0123456789" * 100_000
    with live_server(app) as url:
        response = httpx.post(
            url + "/echo", content=[body[i : i + 65536] for i in range(0, len(body), 65536)]
        )
    assert response.content == body


@pytest.mark.parametrize(
    "executor",
    [
        pytest.param(None, id="the pool's own threads"),
        pytest.param(ThreadPoolExecutor(2), id="an executor the user supplied"),
    ],
)
def test_queue_full_answers_503_under_uvicorn(
    live_server: Serve, executor: ThreadPoolExecutor | None
) -> None:
    entered, release = threading.Event(), threading.Event()
    pool = Pool(
        "full", max_workers=1, max_queue=0, executor=executor, shutdown_executor=bool(executor)
    )
    app = OffloadMiddleware(blocking_app(entered, release), pool=pool)
    with live_server(app) as url, ThreadPoolExecutor(1) as client_thread:
        blocked = client_thread.submit(httpx.get, url + "/block", timeout=20)
        assert entered.wait(10)
        refused = httpx.get(url + "/fast", timeout=10)
        release.set()
        assert blocked.result().status_code == 200
    pool.shutdown()
    assert refused.status_code == 503
    assert refused.headers["retry-after"] == "1"
