"""TimingMiddleware on the ASGI wire: the Server-Timing header, hooks with first/last byte,
errors, disconnects and cancellation, exposure rules, and per-request metric isolation."""

from __future__ import annotations

import logging
from typing import Any

import anyio
import pytest

from middlewares._core.outcome import Outcome, set_outcome
from middlewares._types import Message, Receive, Scope, Send
from middlewares.testing import http_scope, run_asgi, websocket_scope
from middlewares.timing import HEADER_BUDGET, RequestTiming, TimingMiddleware, add_timing, timing

pytestmark = pytest.mark.anyio


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, milliseconds: float) -> None:
        self.now += milliseconds / 1000


def ok_app(clock: FakeClock, *, wait: float = 12.3, headers: list[Any] | None = None) -> Any:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        clock.advance(wait)
        await send({"type": "http.response.start", "status": 200, "headers": headers or []})
        await send({"type": "http.response.body", "body": b"ok"})

    return app


async def test_header_carries_the_time_to_first_byte() -> None:
    clock = FakeClock()
    result = await run_asgi(TimingMiddleware(ok_app(clock), clock=clock))
    assert result.header_all("server-timing") == ["app;dur=12.300"]
    assert result.body == b"ok"


async def test_metric_name_is_configurable() -> None:
    clock = FakeClock()
    result = await run_asgi(TimingMiddleware(ok_app(clock), metric="total", clock=clock))
    assert result.header("server-timing") == "total;dur=12.300"


async def test_the_apps_own_server_timing_is_kept() -> None:
    clock = FakeClock()
    own = [(b"Server-Timing", b"cdn;dur=1"), (b"content-type", b"text/plain")]
    result = await run_asgi(TimingMiddleware(ok_app(clock, headers=own), clock=clock))
    # RFC 9110 §5.3: several fields of a list header read as one comma-joined list.
    assert ", ".join(result.header_all("server-timing")) == "cdn;dur=1, app;dur=12.300"
    assert own == [(b"Server-Timing", b"cdn;dur=1"), (b"content-type", b"text/plain")]


async def test_a_reused_response_message_is_not_altered() -> None:
    clock = FakeClock()
    start: Message = {"type": "http.response.start", "status": 200, "headers": []}

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send(start)
        await send({"type": "http.response.body", "body": b""})

    middleware = TimingMiddleware(app, clock=clock)
    for _ in range(2):
        result = await run_asgi(middleware)
        assert result.header_all("server-timing") == ["app;dur=0.000"]
    assert start == {"type": "http.response.start", "status": 200, "headers": []}


async def test_application_metrics_join_the_header_in_order() -> None:
    clock = FakeClock()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        with timing("db", desc='users "active"'):
            clock.advance(4.1)
        async with timing("cache"):
            clock.advance(0.5)
        add_timing("miss")
        add_timing("render", 2, desc="template")
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    result = await run_asgi(TimingMiddleware(app, clock=clock))
    assert result.header("server-timing") == (
        'app;dur=4.600, db;dur=4.100;desc="users \\"active\\"", cache;dur=0.500, miss,'
        ' render;dur=2.000;desc="template"'
    )


async def test_header_stays_within_its_budget_while_hooks_get_every_metric() -> None:
    clock = FakeClock()
    seen: list[RequestTiming] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        for row in range(500):  # a metric per row: a header proxies would refuse
            add_timing(f"row{row}", 1, desc="x" * 20)
        await ok_app(clock)(scope, receive, send)

    for hooks in (None, [seen.append]):
        result = await run_asgi(TimingMiddleware(app, clock=clock, on_timing=hooks))
        value = result.header("server-timing") or ""
        assert value.startswith('app;dur=12.300, row0;dur=1.000;desc="xxxxxxxxxxxxxxxxxxxx"')
        assert len(value) <= len("app;dur=12.300") + HEADER_BUDGET
        assert len(value) > HEADER_BUDGET - 50
    assert len(seen[0].metrics) == 500


async def test_a_block_that_raises_is_still_timed() -> None:
    clock = FakeClock()
    seen: list[RequestTiming] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        try:
            with timing("db"):
                clock.advance(3)
                raise LookupError
        except LookupError:
            pass
        await send({"type": "http.response.start", "status": 404, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    await run_asgi(TimingMiddleware(app, clock=clock, on_timing=seen.append))
    [metric] = seen[0].metrics
    assert (metric.name, metric.dur) == ("db", pytest.approx(3.0))
    assert seen[0].status == 404


async def test_streamed_response_reports_first_and_last_byte_apart() -> None:
    clock = FakeClock()
    seen: list[RequestTiming] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        clock.advance(10)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for _ in range(3):
            clock.advance(20)
            await send({"type": "http.response.body", "body": b"chunk", "more_body": True})
        add_timing("stream", 60)  # after the headers went out: hooks only
        await send({"type": "http.response.body", "body": b""})
        clock.advance(5)  # a background task after the response

    result = await run_asgi(TimingMiddleware(app, clock=clock, on_timing=seen.append))
    assert result.header("server-timing") == "app;dur=10.000"
    [record] = seen
    assert record.ttfb == pytest.approx(0.010)
    assert record.ttlb == pytest.approx(0.070)
    assert record.duration == pytest.approx(0.075)
    assert (record.status, record.outcome, record.error) == (200, "ok", None)
    assert record.metrics == (("stream", 60, None),)
    assert (record.method, record.path, record.template, record.route) == ("GET", "/", None, "/")


async def test_raising_app_is_reported_as_500_before_the_exception_propagates() -> None:
    clock = FakeClock()
    seen: list[RequestTiming] = []
    boom = RuntimeError("boom")

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        add_timing("db", 1)
        clock.advance(7)
        raise boom

    middleware = TimingMiddleware(app, clock=clock, on_timing=seen.append)

    async def server(scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await middleware(scope, receive, send)
        except RuntimeError:
            # The error reaches the server (or an error middleware) already reported.
            assert [(r.status, r.outcome, r.error) for r in seen] == [(500, "error", boom)]
            raise

    with pytest.raises(RuntimeError, match="boom"):
        await run_asgi(server)
    [record] = seen
    assert (record.ttfb, record.ttlb, record.duration) == (None, None, pytest.approx(0.007))
    assert [m.name for m in record.metrics] == ["db"]


async def test_app_raising_after_a_complete_response_keeps_the_status() -> None:
    clock = FakeClock()
    seen: list[RequestTiming] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 201, "headers": []})
        await send({"type": "http.response.body", "body": b""})
        raise ValueError("background task failed")

    with pytest.raises(ValueError, match="background"):
        await run_asgi(TimingMiddleware(app, clock=clock, on_timing=seen.append))
    assert (seen[0].status, seen[0].outcome) == (201, "error")


async def test_app_raising_mid_stream_keeps_the_status_it_sent_as_an_error() -> None:
    seen: list[RequestTiming] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"a", "more_body": True})
        raise ValueError("generator failed")

    with pytest.raises(ValueError, match="generator"):
        await run_asgi(TimingMiddleware(app, on_timing=seen.append))
    # As the access log reports it: the client saw a 200 and a cut body.
    assert (seen[0].status, seen[0].outcome, seen[0].ttlb) == (200, "error", None)


async def disconnect_at_once() -> Message:
    return {"type": "http.disconnect"}


async def test_client_that_disconnected_before_the_response_is_499() -> None:
    seen: list[RequestTiming] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        assert (await receive())["type"] == "http.disconnect"

    await run_asgi(
        TimingMiddleware(app, on_timing=seen.append), receive=disconnect_at_once, validate=True
    )
    assert (seen[0].status, seen[0].outcome, seen[0].ttfb) == (499, "disconnect", None)


async def test_client_that_disconnected_mid_stream_is_499_with_a_first_byte() -> None:
    seen: list[RequestTiming] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"a", "more_body": True})
        await receive()  # the client went away: stop streaming

    await run_asgi(TimingMiddleware(app, on_timing=seen.append), receive=disconnect_at_once)
    record = seen[0]
    assert (record.status, record.outcome, record.ttlb) == (499, "disconnect", None)
    assert record.ttfb is not None


async def test_disconnect_seen_by_the_app_as_an_exception_is_499() -> None:
    seen: list[RequestTiming] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if (await receive())["type"] == "http.disconnect":
            raise OSError("client disconnected")  # as frameworks do while reading a body

    with pytest.raises(OSError, match="client disconnected"):
        await run_asgi(TimingMiddleware(app, on_timing=seen.append), receive=disconnect_at_once)
    assert (seen[0].status, seen[0].outcome) == (499, "disconnect")


async def test_final_send_failing_is_a_disconnect() -> None:
    seen: list[RequestTiming] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"late"})

    async def server_send(message: Message) -> None:
        if message["type"] == "http.response.body":
            raise ConnectionResetError("peer went away")

    middleware = TimingMiddleware(app, on_timing=seen.append)
    with pytest.raises(ConnectionResetError):
        await middleware(http_scope(), disconnect_at_once, server_send)
    assert (seen[0].status, seen[0].outcome, seen[0].ttlb) == (499, "disconnect", None)


async def test_cancelled_request_is_499() -> None:
    seen: list[RequestTiming] = []
    started = anyio.Event()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        started.set()
        await anyio.sleep_forever()

    middleware = TimingMiddleware(app, on_timing=seen.append)
    async with anyio.create_task_group() as group:
        group.start_soon(run_asgi, middleware)
        await started.wait()
        group.cancel_scope.cancel()
    assert (seen[0].status, seen[0].outcome) == (499, "disconnect")


async def test_app_returning_without_a_response_is_a_500() -> None:
    seen: list[RequestTiming] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        return None

    await run_asgi(TimingMiddleware(app, on_timing=seen.append), validate=False)
    assert (seen[0].status, seen[0].outcome, seen[0].error) == (500, "error", None)


@pytest.mark.parametrize(
    "messages",
    [
        pytest.param([{"type": "http.response.pathsend", "path": "/etc/hostname"}], id="pathsend"),
        pytest.param(
            [
                {"type": "http.response.body", "body": b"x"},
                {"type": "http.response.trailers", "headers": [], "more_trailers": False},
            ],
            id="trailers",
        ),
    ],
)
async def test_last_byte_of_extension_responses(messages: list[Message]) -> None:
    clock = FakeClock()
    seen: list[RequestTiming] = []
    trailers = messages[-1]["type"] == "http.response.trailers"

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "trailers": trailers})
        for message in messages:
            clock.advance(5)
            await send(message)

    extensions = {"http.response.pathsend": {}, "http.response.trailers": {}}
    await run_asgi(
        TimingMiddleware(app, clock=clock, on_timing=seen.append),
        http_scope(extensions=extensions),
    )
    assert seen[0].ttlb == pytest.approx(0.005 * len(messages))
    assert seen[0].outcome == "ok"


async def test_every_hook_runs_even_when_one_fails(caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()
    seen: list[int] = []

    def broken(record: RequestTiming) -> None:
        raise KeyError("sink down")

    hooks = [broken, lambda record: seen.append(record.status)]
    with caplog.at_level(logging.ERROR, logger="middlewares.timing"):
        result = await run_asgi(TimingMiddleware(ok_app(clock), clock=clock, on_timing=hooks))
    assert result.status == 200
    assert seen == [200]
    assert "on_timing hook" in caplog.text
    assert "sink down" in caplog.text


async def test_expose_never_keeps_the_header_private_but_feeds_hooks() -> None:
    clock = FakeClock()
    seen: list[RequestTiming] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        add_timing("db", 3)
        await ok_app(clock)(scope, receive, send)

    for hooks in ([seen.append], None):
        result = await run_asgi(TimingMiddleware(app, clock=clock, expose="never", on_timing=hooks))
        assert result.header("server-timing") is None
    assert [m.name for m in seen[0].metrics] == ["db"]


SITE = "https://app.example.com"


@pytest.mark.parametrize("hooked", [False, True], ids=["header only", "with a hook"])
@pytest.mark.parametrize(
    ("headers", "server_timing", "allow_origin"),
    [
        pytest.param({"origin": SITE}, True, SITE, id="listed cross-origin page"),
        pytest.param({"origin": "https://evil.test"}, False, None, id="other origin"),
        pytest.param({"host": "app.example.com"}, True, None, id="same-origin page"),
        pytest.param({"host": "internal:8080"}, False, None, id="not listed, no Origin"),
    ],
)
async def test_expose_to_listed_origins(
    headers: dict[str, str], server_timing: bool, allow_origin: str | None, hooked: bool
) -> None:
    clock = FakeClock()
    app = ok_app(clock, headers=[(b"vary", b"Accept-Encoding")])
    middleware = TimingMiddleware(
        app, clock=clock, expose=[SITE], on_timing=(lambda r: None) if hooked else None
    )
    result = await run_asgi(middleware, http_scope(headers=headers, scheme="https"))
    assert (result.header("server-timing") is not None) is server_timing
    assert result.header("timing-allow-origin") == allow_origin
    assert result.header_all("vary") == ["Accept-Encoding, Origin"]


async def test_listed_origins_get_the_application_metrics_too() -> None:
    clock = FakeClock()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        add_timing("db", 2)
        await ok_app(clock)(scope, receive, send)

    # A default port in the list is the origin browsers send without it.
    middleware = TimingMiddleware(app, clock=clock, expose=["https://app.example.com:443"])
    result = await run_asgi(middleware, http_scope(headers={"origin": SITE}, scheme="https"))
    assert result.header("server-timing") == "app;dur=12.300, db;dur=2.000"
    assert result.header("timing-allow-origin") == SITE


async def test_expose_predicate_decides_per_request() -> None:
    clock = FakeClock()

    def from_office(scope: Scope) -> bool:
        return bool(scope["client"][0].startswith("10."))

    middleware = TimingMiddleware(ok_app(clock), clock=clock, expose=from_office)
    inside = await run_asgi(middleware, http_scope(client=("10.1.2.3", 4000)))
    outside = await run_asgi(middleware, http_scope(client=("203.0.113.5", 4000)))
    assert inside.header("server-timing") == "app;dur=12.300"
    assert outside.header("server-timing") is None
    assert outside.header("vary") is None


async def test_excluded_paths_are_untouched() -> None:
    clock = FakeClock()
    seen: list[RequestTiming] = []
    middleware = TimingMiddleware(
        ok_app(clock), clock=clock, on_timing=seen.append, exclude_paths=["/health"]
    )
    excluded = await run_asgi(middleware, http_scope(path="/health"))
    timed = await run_asgi(middleware, http_scope(path="/healthz"))
    assert excluded.header("server-timing") is None
    assert timed.header("server-timing") is not None
    assert [record.path for record in seen] == ["/healthz"]


@pytest.mark.parametrize(
    "scope",
    [
        pytest.param(websocket_scope(), id="websocket"),
        pytest.param({"type": "lifespan", "asgi": {"version": "3.0"}}, id="lifespan"),
    ],
)
async def test_other_scopes_pass_through_with_the_servers_callables(scope: Scope) -> None:
    seen: list[Any] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.extend([receive, send])

    async def receive() -> Message:
        raise AssertionError

    async def send(message: Message) -> None:
        raise AssertionError

    await TimingMiddleware(app, on_timing=print)(scope, receive, send)
    assert seen == [receive, send]


async def test_concurrent_requests_keep_their_own_metrics() -> None:
    clock = FakeClock()
    both_started = anyio.Event()
    arrived: list[str] = []
    results: dict[str, Any] = {}
    seen: dict[str, RequestTiming] = {}

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        name = scope["path"].strip("/")
        add_timing(f"{name}-before")
        arrived.append(name)
        if len(arrived) == 2:
            both_started.set()
        await both_started.wait()  # both requests are now in flight at once
        add_timing(f"{name}-after")
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    middleware = TimingMiddleware(app, clock=clock, on_timing=lambda r: seen.__setitem__(r.path, r))

    async def one(name: str) -> None:
        results[name] = await run_asgi(middleware, http_scope(path=f"/{name}"))

    async with anyio.create_task_group() as group:
        group.start_soon(one, "a")
        group.start_soon(one, "b")
    for name in "ab":
        expected = f"app;dur=0.000, {name}-before, {name}-after"
        assert results[name].header("server-timing") == expected
        assert [m.name for m in seen[f"/{name}"].metrics] == [f"{name}-before", f"{name}-after"]
    add_timing("outside")  # the requests' lists are gone from this context
    assert [m.name for m in seen["/a"].metrics] == ["a-before", "a-after"]


async def test_client_that_left_before_the_app_answered_is_a_disconnect_not_ok() -> None:
    seen: list[RequestTiming] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()  # the client is gone; the server drops what the app sends next
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"too late"})

    await run_asgi(TimingMiddleware(app, on_timing=seen.append), receive=disconnect_at_once)
    assert (seen[0].status, seen[0].outcome) == (499, "disconnect")


async def test_a_disconnect_after_the_complete_response_stays_ok() -> None:
    seen: list[RequestTiming] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"done"})
        await receive()  # waiting for the client to close, as a long-poll would

    await run_asgi(TimingMiddleware(app, on_timing=seen.append), receive=disconnect_at_once)
    assert (seen[0].status, seen[0].outcome) == (200, "ok")


@pytest.mark.parametrize(
    ("outcome", "status"),
    [
        pytest.param("limited", 429, id="a rate limit refused it"),
        pytest.param("too_large", 413, id="a body limit refused it"),
        pytest.param("timeout", 504, id="a timeout answered it"),
        pytest.param("forbidden", 403, id="a CSRF check refused it"),
    ],
)
async def test_the_outcome_a_guard_recorded_reaches_the_hooks(
    outcome: Outcome, status: int
) -> None:
    seen: list[RequestTiming] = []

    async def guard(scope: Scope, receive: Receive, send: Send) -> None:
        set_outcome(scope, outcome)
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    await run_asgi(TimingMiddleware(guard, on_timing=seen.append))
    assert (seen[0].status, seen[0].outcome) == (status, outcome)
