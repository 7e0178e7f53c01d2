"""TimeoutMiddleware in-process: the budgets, 504 before the start and an abort after it, the
traps of limits.md §4 (46–54), the deadline context variable, per-path budgets and WebSockets."""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import Any

import anyio
import pytest

from middlewares._core.outcome import get_outcome
from middlewares._types import ASGIApp, Message, Receive, Scope, Send
from middlewares.offload import OffloadMiddleware, Pool, run_in_thread
from middlewares.testing import Recorded, http_scope, run_asgi, websocket_scope
from middlewares.timeout import TimeoutMiddleware, Timeouts, get_deadline, remaining

from .logs import collected

pytestmark = pytest.mark.anyio

logger = logging.getLogger("middlewares.timeout")


def answer_after(delay: float, body: bytes = b"ok") -> ASGIApp:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await anyio.sleep(delay)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})

    return app


async def respond(send: Send) -> None:
    """Answer 200 ``ok`` without a checkpoint before the start."""
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


def stream(pauses: list[float], content_type: bytes = b"text/plain") -> ASGIApp:
    """Starts at once, then sends one chunk after each pause, then the final empty chunk."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        headers = [(b"content-type", content_type)]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        for index, pause in enumerate(pauses):
            await anyio.sleep(pause)
            chunk = b"data: %d\n\n" % index
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b""})

    return app


def complete(recorded: Recorded) -> bool:
    bodies = recorded.of_type("http.response.body")
    return bool(bodies) and not bodies[-1].get("more_body", False)


# --- configuration ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "says"),
    [
        pytest.param({"timeout": 0}, "timeout must be", id="zero timeout"),
        pytest.param({"timeout": -1}, "timeout must be", id="negative timeout"),
        pytest.param({"idle_timeout": float("inf")}, "idle_timeout must be", id="infinite idle"),
        pytest.param({"total_timeout": "5"}, "total_timeout must be", id="string total"),
        pytest.param({"timeout": True}, "timeout must be", id="bool timeout"),
        pytest.param({"status_code": 200}, "status_code must be", id="success status"),
        pytest.param({"status_code": 600}, "status_code must be", id="status out of range"),
        pytest.param({"path_timeouts": {"/x": 0}}, r"path_timeouts\['/x'\]", id="zero path"),
        pytest.param({"path_timeouts": {"x": 1}}, "starting with '/'", id="bad pattern"),
    ],
)
def test_bad_configuration_names_the_argument(kwargs: dict[str, Any], says: str) -> None:
    with pytest.raises(ValueError, match=says):
        TimeoutMiddleware(answer_after(0), **kwargs)


def test_timeouts_validate_each_budget() -> None:
    with pytest.raises(ValueError, match="idle must be a positive number"):
        Timeouts(idle=-1)


# --- before the response starts --------------------------------------------------------------


async def test_a_response_not_started_in_time_is_a_504_problem_with_connection_close() -> None:
    scope = http_scope()
    with collected(logger) as records:
        recorded = await run_asgi(TimeoutMiddleware(answer_after(10), timeout=0.05), scope)
    assert recorded.status == 504
    assert recorded.header("connection") == "close"
    assert recorded.header("content-type") == "application/problem+json"
    assert json.loads(recorded.body)["title"] == "Gateway Timeout"
    assert get_outcome(scope) == "timeout"
    assert "timed out before its response started" in records[-1].getMessage()


async def test_an_app_that_swallows_the_cancellation_still_gets_the_504() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await anyio.sleep(10)
        except anyio.get_cancelled_exc_class():
            return  # wrong, but it happens

    recorded = await run_asgi(TimeoutMiddleware(app, timeout=0.02))
    assert recorded.status == 504


async def test_a_response_started_in_time_passes_untouched() -> None:
    scope = http_scope()
    recorded = await run_asgi(TimeoutMiddleware(answer_after(0), timeout=5), scope)
    assert (recorded.status, recorded.body) == (200, b"ok")
    assert get_outcome(scope) is None


@pytest.mark.parametrize(
    ("status", "title"),
    [
        pytest.param(None, "Gateway Timeout", id="504 by default"),
        pytest.param(503, "Service Unavailable", id="503 when shedding load"),
        pytest.param(599, "Timeout", id="a status without a phrase"),
    ],
)
async def test_trap54_the_status_is_configurable_and_504_by_default(
    status: int | None, title: str
) -> None:
    kwargs = {} if status is None else {"status_code": status}
    recorded = await run_asgi(TimeoutMiddleware(answer_after(10), timeout=0.02, **kwargs))
    assert recorded.status == (status or 504)
    assert json.loads(recorded.body)["title"] == title


async def test_trap46_blocked_thread_work_gets_504_and_is_counted_abandoned() -> None:
    pool = Pool("timeout-trap46", max_workers=1, max_queue=0)
    release = threading.Event()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await run_in_thread(release.wait, 10, pool=pool)  # a sync handler stuck in a driver
        await answer_after(0)(scope, receive, send)

    try:
        recorded = await run_asgi(TimeoutMiddleware(app, timeout=0.05))
        assert recorded.status == 504
        assert pool.stats().abandoned == 1
    finally:
        release.set()
        pool.shutdown()
    assert pool.stats().abandoned == 0


async def test_trap46_a_whole_offloaded_request_is_abandoned_on_timeout() -> None:
    pool = Pool("timeout-trap46-offload", max_workers=1, max_queue=0)
    release = threading.Event()

    async def blocking(scope: Scope, receive: Receive, send: Send) -> None:
        release.wait(10)

    try:
        recorded = await run_asgi(
            TimeoutMiddleware(OffloadMiddleware(blocking, pool=pool), timeout=0.05)
        )
        assert recorded.status == 504
        assert pool.stats().abandoned == 1
    finally:
        release.set()
        pool.shutdown()


async def test_trap49_an_early_exception_propagates_at_once_not_after_the_timeout() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        raise RuntimeError("broken handler")

    scope = http_scope()
    with pytest.raises(RuntimeError, match="broken handler"):
        await run_asgi(TimeoutMiddleware(app, timeout=3600), scope)  # would hang an hour
    assert get_outcome(scope) is None


async def _sleep_through_deadline_blocking(scope: Scope, receive: Receive, send: Send) -> None:
    time.sleep(0.1)  # noqa: ASYNC251 - the loop cannot run the deadline's timer meanwhile
    await respond(send)


async def _sleep_through_deadline_shielded(scope: Scope, receive: Receive, send: Send) -> None:
    with anyio.CancelScope(shield=True):
        await anyio.sleep(0.1)  # the deadline fires while the app is deaf to it
    await respond(send)


@pytest.mark.parametrize(
    ("app", "statuses"),
    [
        # asyncio has not run the deadline's timer yet: the app's response goes out whole;
        # trio checks the deadline at the send itself: the 504 goes out whole.
        pytest.param(_sleep_through_deadline_blocking, {200, 504}, id="deadline passes unseen"),
        pytest.param(_sleep_through_deadline_shielded, {504}, id="start sent after the timer"),
        pytest.param(answer_after(0.1), {504}, id="cancelled before the start"),
    ],
)
async def test_trap50_a_timeout_at_the_start_gives_one_complete_response(
    app: ASGIApp, statuses: set[int]
) -> None:
    recorded = await run_asgi(TimeoutMiddleware(app, timeout=0.02))
    assert len(recorded.of_type("http.response.start")) == 1
    assert recorded.status in statuses
    assert complete(recorded)
    expected = b"ok" if recorded.status == 200 else b'"title":"Gateway Timeout"'
    assert expected in recorded.body


# --- after the response started --------------------------------------------------------------


async def test_trap47_a_stall_after_the_headers_aborts_without_a_second_start() -> None:
    scope = http_scope()
    recorded = await run_asgi(
        TimeoutMiddleware(stream([0, 10]), idle_timeout=0.05), scope, validate=False
    )
    assert len(recorded.of_type("http.response.start")) == 1
    assert recorded.status == 200
    assert recorded.body == b"data: 0\n\n"
    assert not complete(recorded)
    assert get_outcome(scope) == "timeout"


async def test_trap52_a_timed_out_stream_is_never_ended_silently() -> None:
    with collected(logger) as records:
        recorded = await run_asgi(
            TimeoutMiddleware(stream([0.01] * 100), total_timeout=0.1), validate=False
        )
    assert not complete(recorded)  # no final chunk: the client sees a cut, not an end
    assert records[-1].levelno == logging.WARNING
    assert "timed out after its response started" in records[-1].getMessage()


async def test_idle_budget_restarts_with_every_chunk() -> None:
    recorded = await run_asgi(TimeoutMiddleware(stream([0.02] * 10), idle_timeout=0.5))
    assert complete(recorded)
    assert recorded.body.count(b"data:") == 10


@pytest.mark.parametrize(
    ("kwargs", "completes"),
    [
        pytest.param({"timeout": 0.05}, True, id="time to first byte only"),
        pytest.param(
            {"timeout": 0.05, "idle_timeout": 0.05, "total_timeout": 0.05},
            True,
            id="event streams exempt from idle and total",
        ),
        pytest.param(
            {"total_timeout": 0.05, "include_event_streams": True},
            False,
            id="unless asked",
        ),
    ],
)
async def test_trap48_server_sent_events_outlive_the_time_to_first_byte(
    kwargs: dict[str, Any], completes: bool
) -> None:
    sse = stream([0.02] * 8, b"text/event-stream; charset=utf-8")  # 0.16 s in all
    recorded = await run_asgi(TimeoutMiddleware(sse, **kwargs), validate=False)
    assert complete(recorded) is completes


async def test_trap51_work_after_the_response_is_complete_is_not_timed() -> None:
    done: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await answer_after(0)(scope, receive, send)
        await anyio.sleep(0.15)  # a background task, past every budget
        done.append("background task finished")

    recorded = await run_asgi(TimeoutMiddleware(app, timeout=0.05, total_timeout=0.05))
    assert recorded.status == 200
    assert done == ["background task finished"]


_START = {"type": "http.response.start", "status": 200, "headers": []}
_TRAILERS_START = {**_START, "trailers": True}


@pytest.mark.parametrize(
    "response",
    [
        pytest.param(
            [_START, {"type": "http.response.pathsend", "path": __file__}],
            id="a file sent with pathsend",
        ),
        pytest.param(
            [_START, {"type": "http.response.zerocopysend", "file": 0, "count": 2}],
            id="a file sent with zerocopysend",
        ),
        pytest.param(
            [
                _TRAILERS_START,
                {"type": "http.response.body", "body": b"ok"},
                {"type": "http.response.trailers", "headers": [(b"x-checksum", b"1")]},
            ],
            id="a body and its trailers",
        ),
    ],
)
async def test_work_after_a_response_sent_by_an_extension_is_not_timed(
    response: list[Message],
) -> None:
    done: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        for message in response:
            await send(message)
        await anyio.sleep(0.15)  # a background task, past every budget
        done.append("background task finished")

    extensions = {name: {} for name in ("http.response.pathsend", "http.response.zerocopysend")}
    scope = http_scope(extensions={**extensions, "http.response.trailers": {}})
    with collected(logger) as records:
        recorded = await run_asgi(
            TimeoutMiddleware(app, timeout=0.05, total_timeout=0.05), scope, validate=False
        )
    assert recorded.messages == response
    assert done == ["background task finished"]
    assert get_outcome(scope) is None
    assert records == []  # no false "cut short" warning


async def test_a_response_with_trailers_is_not_complete_until_they_are_sent() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send(_TRAILERS_START)
        await send({"type": "http.response.body", "body": b"ok"})
        await anyio.sleep(10)  # the trailers never come

    scope = http_scope(extensions={"http.response.trailers": {}})
    recorded = await run_asgi(TimeoutMiddleware(app, total_timeout=0.05), scope, validate=False)
    assert recorded.of_type("http.response.trailers") == []
    assert get_outcome(scope) == "timeout"


# --- the deadline ----------------------------------------------------------------------------


async def test_remaining_and_get_deadline_tell_the_app_its_budget() -> None:
    seen: dict[str, Any] = {}

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen["remaining"] = remaining()
        seen["deadline"] = get_deadline()
        seen["thread"] = await run_in_thread(remaining)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        seen["after start"] = remaining()
        await send({"type": "http.response.body", "body": b""})

    await run_asgi(TimeoutMiddleware(app, timeout=30))
    assert 0 < seen["remaining"] <= 30
    assert seen["deadline"] == pytest.approx(time.monotonic() + 30, abs=5)
    assert 0 < seen["thread"] <= 30
    assert seen["after start"] is None  # only the time to first byte was bounded
    assert remaining() is None
    assert get_deadline() is None


async def test_remaining_follows_the_total_budget_after_the_start() -> None:
    seen: list[float | None] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        seen.append(remaining())
        await send({"type": "http.response.body", "body": b""})
        seen.append(remaining())

    await run_asgi(TimeoutMiddleware(app, timeout=1, total_timeout=60))
    assert seen[0] is not None
    assert 1 < seen[0] <= 60
    assert seen[1] is None


async def test_remaining_is_zero_once_the_budget_ran_out() -> None:
    seen: list[float | None] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        time.sleep(0.03)  # noqa: ASYNC251 - past the deadline without a checkpoint
        seen.append(remaining())
        await answer_after(0)(scope, receive, send)

    await run_asgi(TimeoutMiddleware(app, timeout=0.01))
    assert seen == [0.0]


# --- per path, concurrency, exemptions -------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "status"),
    [
        pytest.param("/fast", 504, id="app budget"),
        pytest.param("/reports/7", 200, id="a longer budget for a route template"),
        pytest.param("/exports/all", 200, id="None leaves a path untimed"),
        pytest.param("/stream", 200, id="a Timeouts without a first-byte budget"),
    ],
)
async def test_path_budgets_override_the_app_budget(path: str, status: int) -> None:
    middleware = TimeoutMiddleware(
        answer_after(0.1),
        timeout=0.02,
        path_timeouts={
            "/reports/{id}": 5,
            "/exports/*": None,
            "/stream": Timeouts(first_byte=None, total=10),
        },
    )
    recorded = await run_asgi(middleware, http_scope("GET", path))
    assert recorded.status == status


async def test_a_short_deadline_fires_even_when_a_longer_one_was_armed_first() -> None:
    short_done = anyio.Event()

    async def long_app(scope: Scope, receive: Receive, send: Send) -> None:
        await short_done.wait()
        await answer_after(0)(scope, receive, send)

    middleware = TimeoutMiddleware(
        long_app, timeout=10, path_timeouts={"/short": Timeouts(first_byte=0.05)}
    )
    short = TimeoutMiddleware(answer_after(10), timeout=0.05)
    results: dict[str, int] = {}

    async def run(name: str, app: ASGIApp) -> None:
        results[name] = (await run_asgi(app, http_scope("GET", "/" + name))).status
        if name == "short":
            short_done.set()

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(run, "long", middleware)
        await anyio.sleep(0.01)
        tasks.start_soon(run, "short", short)
    assert results == {"long": 200, "short": 504}


async def test_websockets_pass_untouched_unless_asked() -> None:
    seen: list[Send] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(send)
        await anyio.sleep(0.05)
        await send({"type": "websocket.close"})

    async def send(message: Message) -> None:
        return None

    async def receive() -> Message:
        return {"type": "websocket.connect"}

    await TimeoutMiddleware(app, timeout=0.01)(websocket_scope(), receive, send)
    assert seen == [send]


async def test_a_websocket_not_accepted_in_time_is_closed_before_accept() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await anyio.sleep(10)

    scope = websocket_scope()
    recorded = await run_asgi(TimeoutMiddleware(app, timeout=0.02, include_websockets=True), scope)
    assert recorded.messages == [{"type": "websocket.close", "code": 1013}]
    assert get_outcome(scope) == "timeout"


async def test_a_websocket_past_its_total_budget_is_closed_with_1013() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        await anyio.sleep(10)

    middleware = TimeoutMiddleware(app, timeout=1, total_timeout=0.05, include_websockets=True)
    recorded = await run_asgi(middleware, websocket_scope())
    assert recorded.messages == [
        {"type": "websocket.accept"},
        {"type": "websocket.close", "code": 1013, "reason": "Timeout"},
    ]


async def test_a_websocket_refused_before_accept_is_not_timed_afterwards() -> None:
    finished: list[bool] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.close", "code": 1008})
        await anyio.sleep(0.1)  # clean-up after the refusal, past every budget
        finished.append(True)

    scope = websocket_scope()
    middleware = TimeoutMiddleware(app, timeout=0.02, total_timeout=0.05, include_websockets=True)
    recorded = await run_asgi(middleware, scope)
    assert recorded.messages == [{"type": "websocket.close", "code": 1008}]  # one close, not two
    assert finished == [True]
    assert get_outcome(scope) is None


async def test_unknown_messages_pass_through() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.early_hint", "links": []})
        await answer_after(0)(scope, receive, send)

    scope = http_scope(extensions={"http.response.early_hint": {}})
    recorded = await run_asgi(TimeoutMiddleware(app, timeout=1, idle_timeout=1), scope)
    assert recorded.messages[0]["type"] == "http.response.early_hint"
    assert recorded.status == 200
