"""WSGIMiddleware in-process: a client or server that goes away never leaves a thread waiting."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import anyio
import pytest

from middlewares.testing import http_scope, run_asgi
from middlewares.wsgi import ClientDisconnected, WSGIMiddleware

pytestmark = pytest.mark.anyio

CHUNK = b"c" * 1024


def endless(closed: threading.Event) -> Any:
    def app(environ: Any, start_response: Any) -> Iterator[bytes]:
        start_response("200 OK", [])
        try:
            while True:
                yield CHUNK
        finally:
            closed.set()

    return app


async def wait_for(event: threading.Event) -> None:
    assert await anyio.to_thread.run_sync(event.wait, 10)


async def test_disconnect_mid_response_closes_the_iterable() -> None:
    closed = threading.Event()
    enough = anyio.Event()
    sent: list[Any] = []
    delivered = False

    async def receive() -> dict[str, Any]:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await enough.wait()
        return {"type": "http.disconnect"}

    async def send(message: Any) -> None:
        sent.append(message)
        if len(sent) == 5:
            enough.set()

    await WSGIMiddleware(endless(closed), send_queue_size=2)(http_scope(), receive, send)
    await wait_for(closed)
    assert sent[0]["type"] == "http.response.start"
    assert all(m["more_body"] for m in sent[1:])


async def test_write_after_disconnect_raises_in_the_app() -> None:
    errors: list[BaseException] = []
    gone = threading.Event()

    def app(environ: Any, start_response: Any) -> list[bytes]:
        write = start_response("200 OK", [])
        try:
            while True:
                write(CHUNK)
        except OSError as exc:
            errors.append(exc)
            gone.set()
        return []

    async def send(message: Any) -> None:
        if message["type"] == "http.response.body":
            raise OSError("connection reset")  # what a server raises for a vanished client

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    await WSGIMiddleware(app)(http_scope(), receive, send)
    await wait_for(gone)
    assert isinstance(errors[0], ClientDisconnected)
    assert "connection reset" in str(errors[0])


async def test_send_failure_is_reraised_and_the_iterable_closed() -> None:
    closed = threading.Event()

    async def send(message: Any) -> None:
        if message["type"] == "http.response.body":
            raise LookupError("server bug")

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    with pytest.raises(LookupError, match="server bug"):
        await WSGIMiddleware(endless(closed))(http_scope(), receive, send)
    await wait_for(closed)


async def test_request_queued_when_the_pool_shuts_down_gets_503() -> None:
    release = threading.Event()
    entered = threading.Event()

    def app(environ: Any, start_response: Any) -> list[bytes]:
        entered.set()
        release.wait(10)
        start_response("200 OK", [])
        return [b"first"]

    with ThreadPoolExecutor(1) as executor:
        middleware = WSGIMiddleware(app, executor=executor)
        results: dict[str, Any] = {}

        async def request(name: str) -> None:
            results[name] = await run_asgi(middleware)

        async with anyio.create_task_group() as tasks:
            tasks.start_soon(request, "first")
            await wait_for(entered)
            tasks.start_soon(request, "queued")
            while executor._work_queue.qsize() == 0:  # noqa: ASYNC110 (a thread's queue)
                await anyio.sleep(0.001)  # the second request is waiting for the worker
            executor.shutdown(wait=False, cancel_futures=True)
            release.set()
    assert results["first"].body == b"first"
    assert results["queued"].status == 503


async def test_requests_run_in_parallel_not_one_at_a_time() -> None:
    # asgiref's thread-sensitive bridge runs every WSGI request on one thread (asgiref#223):
    # these two requests could then never meet at the barrier.
    barrier = threading.Barrier(2, timeout=10)

    def app(environ: Any, start_response: Any) -> list[bytes]:
        barrier.wait()
        start_response("200 OK", [])
        return [b"met"]

    middleware = WSGIMiddleware(app, workers=2)
    results: list[bytes] = []

    async def request() -> None:
        results.append((await run_asgi(middleware)).body)

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(request)
        tasks.start_soon(request)
    assert results == [b"met", b"met"]


async def test_a_stalled_client_stops_the_app_after_a_few_chunks() -> None:
    # a2wsgi#46: an unbounded queue let a slow client's response pile up in memory.
    produced = 0
    closed = threading.Event()
    release = anyio.Event()

    def app(environ: Any, start_response: Any) -> Iterator[bytes]:
        nonlocal produced
        start_response("200 OK", [])
        try:
            while True:
                produced += 1
                yield CHUNK
        finally:
            closed.set()

    async def stalled_send(message: Any) -> None:
        if message["type"] == "http.response.body":
            await release.wait()  # the client stopped reading
            raise OSError("client gone")

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(
            WSGIMiddleware(app, send_queue_size=4), http_scope(), receive, stalled_send
        )
        while produced < 4:  # noqa: ASYNC110 (the producer is a thread)
            await anyio.sleep(0.001)
        await anyio.sleep(0.1)  # ample time for an unbounded producer to run far ahead
        # One batch being sent plus one full queue, never more.
        assert produced <= 2 * 4 + 1
        release.set()
    await wait_for(closed)
