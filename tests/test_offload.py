"""OffloadMiddleware in-process: worker loops, bridging, 503 when full, 504 on timeout."""

from __future__ import annotations

import asyncio
import contextvars
import re
import threading
from typing import Any

import anyio
import pytest

from middlewares.offload import OffloadMiddleware, Pool
from middlewares.testing import http_scope, run_asgi, websocket_scope

pytestmark = pytest.mark.anyio

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="unset")


async def wait_for(event: threading.Event) -> None:
    assert await anyio.to_thread.run_sync(event.wait, 10)


async def reply(send: Any, body: bytes, status: int = 200) -> None:
    await send({"type": "http.response.start", "status": status, "headers": []})
    await send({"type": "http.response.body", "body": body, "more_body": False})


async def where(scope: Any, receive: Any, send: Any) -> None:
    """Answer with the thread it ran on and the request body it read."""
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    await reply(send, f"{threading.get_ident()} {request_id.get()} ".encode() + body)


def fresh_pool(workers: int = 2, queue: int = 4) -> Pool:
    return Pool("test", max_workers=workers, max_queue=queue)


async def test_request_runs_on_a_worker_thread_with_the_body_and_context() -> None:
    request_id.set("abc")
    recorded = await run_asgi(
        OffloadMiddleware(where, pool=fresh_pool()), http_scope("POST"), body=[b"he", b"llo"]
    )
    ident, seen_id, body = recorded.body.split(b" ")
    assert int(ident) != threading.get_ident()
    assert (seen_id, body) == (b"abc", b"hello")


@pytest.mark.parametrize(
    ("options", "path", "offloaded"),
    [
        pytest.param({"paths": ["/reports/*"]}, "/reports/1", True, id="listed path offloaded"),
        pytest.param({"paths": ["/reports/*"]}, "/health", False, id="other path stays"),
        pytest.param({"exclude_paths": ["/health"]}, "/health", False, id="excluded path stays"),
        pytest.param({"exclude_paths": ["/health"]}, "/x", True, id="others offloaded"),
    ],
)
async def test_paths(options: dict[str, Any], path: str, offloaded: bool) -> None:
    middleware = OffloadMiddleware(where, pool=fresh_pool(), **options)
    recorded = await run_asgi(middleware, http_scope("GET", path))
    ident = int(recorded.body.split(b" ")[0])
    assert (ident != threading.get_ident()) is offloaded


async def test_websocket_and_lifespan_stay_on_the_server_loop() -> None:
    threads: list[int] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        threads.append(threading.get_ident())
        await receive()
        await send({"type": "websocket.close", "code": 1000})

    await run_asgi(OffloadMiddleware(app, pool=fresh_pool()), websocket_scope())
    assert threads == [threading.get_ident()]


async def test_a_blocked_handler_stalls_only_its_worker() -> None:
    release = threading.Event()
    entered = threading.Event()
    order: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["path"] == "/block":
            entered.set()
            release.wait(10)  # a blocking call inside an async handler
            order.append("blocked handler finished")
        else:
            order.append("fast request served")
        await reply(send, b"ok")

    middleware = OffloadMiddleware(app, pool=fresh_pool(workers=2))
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(run_asgi, middleware, http_scope("GET", "/block"))
        await wait_for(entered)
        for _ in range(3):
            assert (await run_asgi(middleware, http_scope("GET", "/fast"))).body == b"ok"
        release.set()
    assert order == ["fast request served"] * 3 + ["blocked handler finished"]


async def test_full_pool_answers_503_with_retry_after() -> None:
    release = threading.Event()
    entered = threading.Event()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        entered.set()
        release.wait(10)
        await reply(send, b"done")

    pool = fresh_pool(workers=1, queue=0)
    middleware = OffloadMiddleware(app, pool=pool, retry_after=7)
    results: list[Any] = []

    async def first() -> None:
        results.append(await run_asgi(middleware))

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(first)
        await wait_for(entered)
        refused = await run_asgi(middleware)
        assert pool.stats().running == 1
        release.set()
    assert refused.status == 503
    assert refused.header("retry-after") == "7"
    assert results[0].body == b"done"


async def test_response_not_started_in_time_gets_504_and_the_thread_is_counted() -> None:
    release = threading.Event()
    finished = threading.Event()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        release.wait(10)  # blocked: cannot be cancelled until it returns
        try:
            await reply(send, b"too late")
        finally:
            finished.set()

    pool = fresh_pool()
    recorded = await run_asgi(OffloadMiddleware(app, pool=pool, timeout=0.01))
    assert recorded.status == 504
    assert pool.stats().abandoned == 1
    release.set()
    await wait_for(finished)
    while pool.stats().running:  # noqa: ASYNC110 (the worker is a thread)
        await anyio.sleep(0.005)
    assert pool.stats().abandoned == 0


async def test_timeout_cancels_an_awaiting_handler() -> None:
    cancelled = threading.Event()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        try:
            await anyio.sleep(30)
        except BaseException:
            cancelled.set()
            raise

    recorded = await run_asgi(OffloadMiddleware(app, pool=fresh_pool(), timeout=0.01))
    assert recorded.status == 504
    await wait_for(cancelled)


async def test_timeout_does_not_cut_a_started_response() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await anyio.sleep(0.8)  # past the deadline, but the response has started
        await send({"type": "http.response.body", "body": b"complete", "more_body": False})

    recorded = await run_asgi(OffloadMiddleware(app, pool=fresh_pool(), timeout=0.5))
    assert (recorded.status, recorded.body) == (200, b"complete")


async def test_app_exception_propagates() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        raise KeyError("handler bug")

    with pytest.raises(KeyError, match="handler bug"):
        await run_asgi(OffloadMiddleware(app, pool=fresh_pool()))


async def test_send_error_reaches_the_handler() -> None:
    errors: list[BaseException] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        try:
            await send({"type": "http.response.start", "status": 200, "headers": []})
        except OSError as exc:
            errors.append(exc)

    async def broken_send(message: Any) -> None:
        raise OSError("client gone")

    async def receive() -> Any:
        return {"type": "http.disconnect"}

    await OffloadMiddleware(app, pool=fresh_pool())(http_scope(), receive, broken_send)
    assert [str(e) for e in errors] == ["client gone"]


async def test_disconnect_is_delivered_to_the_handler() -> None:
    seen: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append((await receive())["type"])
        seen.append((await receive())["type"])

    async def receive() -> Any:
        return {"type": "http.disconnect"} if seen else {"type": "http.request", "body": b""}

    async def send(message: Any) -> None:
        raise AssertionError("nothing to send")

    await OffloadMiddleware(app, pool=fresh_pool())(http_scope(), receive, send)
    assert seen == ["http.request", "http.disconnect"]


async def test_calls_after_the_server_gave_up_fail_in_the_worker() -> None:
    errors: list[BaseException] = []
    release = threading.Event()
    done = threading.Event()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        release.wait(10)  # blocked past the 504
        try:
            await send({"type": "http.response.start", "status": 200, "headers": []})
        except BaseException as exc:
            errors.append(exc)
        finally:
            done.set()

    recorded = await run_asgi(OffloadMiddleware(app, pool=fresh_pool(), timeout=0.001))
    assert recorded.status == 504
    release.set()
    await wait_for(done)
    # Cancelled at its first await after the 504; its messages never reach the client.
    assert [type(e) for e in errors] == [asyncio.CancelledError]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        pytest.param({"timeout": 0}, "timeout must be a positive number", id="zero timeout"),
        pytest.param({"retry_after": -1}, "retry_after must be an integer >= 0", id="retry"),
        pytest.param(
            {"pool": Pool("p"), "max_workers": 3}, "max_workers and max_queue", id="sizes+Pool"
        ),
        pytest.param({"paths": ["nope"]}, "must be strings starting with '/'", id="bad path"),
    ],
)
def test_bad_configuration(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        OffloadMiddleware(where, **options)
