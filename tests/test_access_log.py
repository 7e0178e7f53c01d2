"""AccessLogMiddleware: one safe record per request, and the traps of limits.md §5.3 (55-64)."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from litestar import Litestar, get
from litestar.params import FromPath
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

from middlewares._core.outcome import set_outcome
from middlewares._types import ASGIApp, Message, Receive, Scope, Send
from middlewares.access_log import AccessLogMiddleware
from middlewares.request_id import RequestIDMiddleware
from middlewares.testing import http_scope, run_asgi

from .logs import collected

pytestmark = pytest.mark.anyio

LOGGER = logging.getLogger("tests.access")
LOGGER.setLevel(logging.INFO)
LOGGER.propagate = False


@pytest.fixture
def lines() -> Iterator[list[logging.LogRecord]]:
    with collected(LOGGER) as records:
        yield records


def parsed(records: list[logging.LogRecord]) -> list[dict[str, Any]]:
    return [json.loads(record.getMessage()) for record in records]


def respond(status: int = 200, body: bytes = b"hello", chunks: int = 1) -> ASGIApp:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": status, "headers": []})
        for index in range(chunks):
            await send(
                {"type": "http.response.body", "body": body, "more_body": index < chunks - 1}
            )

    return app


def logged(app: ASGIApp, **options: Any) -> AccessLogMiddleware:
    return AccessLogMiddleware(app, logger=LOGGER, **options)


async def test_trap_55_one_line_with_latency_and_size_written_after_the_last_body(
    lines: list[logging.LogRecord],
) -> None:
    seen_before_last: list[int] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"abc", "more_body": True})
        seen_before_last.append(len(lines))
        await send({"type": "http.response.body", "body": b"de"})

    ticks = iter([1.0, 1.25, 1.5, 2.0])
    await run_asgi(logged(app, clock=lambda: next(ticks)), http_scope("POST"), body=b"12345678")
    assert seen_before_last == [0]
    (line,) = parsed(lines)
    assert line["ttfb_ms"] == 250.0
    assert line["duration_ms"] == 500.0  # until the last byte went out
    assert (line["bytes_received"], line["bytes_sent"]) == (8, 5)
    assert (line["method"], line["path"], line["status"], line["outcome"]) == (
        "POST",
        "/",
        200,
        "ok",
    )


async def test_bytes_are_counted_not_read_from_content_length(
    lines: list[logging.LogRecord],
) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send(
            {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"99")]}
        )
        await send({"type": "http.response.body", "body": b"four"})

    await run_asgi(logged(app), validate=False)
    assert parsed(lines)[0]["bytes_sent"] == 4


_ZEROCOPY = "http.response.zerocopysend"


@pytest.mark.parametrize(
    ("body", "bytes_sent"),
    [
        pytest.param([{"type": _ZEROCOPY, "file": 0, "count": 5}], 5, id="one counted file"),
        pytest.param(
            [
                {"type": _ZEROCOPY, "file": 0, "count": 3, "more_body": True},
                {"type": _ZEROCOPY, "file": 0, "count": 2},
            ],
            5,
            id="a file in two parts",
        ),
        pytest.param([{"type": _ZEROCOPY, "file": 0}], 0, id="to the end: size unknown"),
    ],
)
async def test_a_file_sent_with_zerocopysend_is_a_complete_response(
    lines: list[logging.LogRecord], body: list[Message], bytes_sent: int
) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for message in body:
            await send(message)

    scope = http_scope(extensions={_ZEROCOPY: {}})
    await run_asgi(logged(app), scope, validate=False)
    (line,) = parsed(lines)
    assert (line["status"], line["outcome"], line["bytes_sent"]) == (200, "ok", bytes_sent)


@pytest.mark.parametrize(
    ("sends_trailers", "outcome"),
    [
        pytest.param(True, "ok", id="complete once the trailers are sent"),
        pytest.param(False, "error", id="the trailers never sent"),
    ],
)
async def test_a_response_with_trailers_ends_with_its_trailers(
    lines: list[logging.LogRecord], sends_trailers: bool, outcome: str
) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        start = {"type": "http.response.start", "status": 200, "headers": [], "trailers": True}
        await send(start)
        await send({"type": "http.response.body", "body": b"abc"})
        if sends_trailers:
            await send({"type": "http.response.trailers", "headers": [(b"x-checksum", b"1")]})

    scope = http_scope(extensions={"http.response.trailers": {}})
    await run_asgi(logged(app), scope, validate=False)
    (line,) = parsed(lines)
    assert (line["status"], line["outcome"], line["bytes_sent"]) == (200, outcome, 3)


async def test_trap_56_request_id_is_on_the_line_and_on_error_lines(
    lines: list[logging.LogRecord],
) -> None:
    async def broken(scope: Scope, receive: Receive, send: Send) -> None:
        raise RuntimeError("boom")

    ok = logged(RequestIDMiddleware(respond()))
    failing = logged(RequestIDMiddleware(broken))
    await run_asgi(ok, http_scope(headers={"x-request-id": "req-1"}))
    with pytest.raises(RuntimeError):
        await run_asgi(failing, http_scope(headers={"x-request-id": "req-2"}))
    first, second = parsed(lines)
    assert first["request_id"] == "req-1"
    assert (second["request_id"], second["status"], second["outcome"]) == ("req-2", 500, "error")


@pytest.mark.parametrize(
    ("path", "status", "logged_lines"),
    [
        pytest.param("/health", 200, 0, id="health 200 dropped"),
        pytest.param("/health", 503, 1, id="health 503 still logged"),
        pytest.param("/healthcare", 200, 1, id="healthcare is another path"),
        pytest.param("/", 200, 1, id="root is not a prefix of everything"),
        pytest.param("/health/", 200, 1, id="trailing slash is another path"),
        pytest.param("/static/app.js", 200, 0, id="below a prefix pattern"),
        pytest.param("/staticfiles", 200, 1, id="not below the prefix"),
        pytest.param("/static/app.js", 404, 1, id="a missing static file still logged"),
        pytest.param("/probe/42", 204, 0, id="a template pattern"),
    ],
)
async def test_trap_58_exact_path_exclusion_drops_only_successes(
    lines: list[logging.LogRecord], path: str, status: int, logged_lines: int
) -> None:
    app = logged(respond(status), exclude_paths=["/health", "/static/*", "/probe/{id}"])
    await run_asgi(app, http_scope(path=path))
    assert len(lines) == logged_lines


async def test_trap_59_disconnect_before_the_response_is_499(
    lines: list[logging.LogRecord],
) -> None:
    async def long_poll(scope: Scope, receive: Receive, send: Send) -> None:
        while (await receive())["type"] != "http.disconnect":
            pass

    async def client_leaves() -> Message:
        return {"type": "http.disconnect"}

    await run_asgi(logged(long_poll), receive=client_leaves)
    (line,) = parsed(lines)
    assert (line["status"], line["outcome"]) == (499, "disconnect")
    assert "ttfb_ms" not in line


async def test_a_failing_send_is_a_disconnect(lines: list[logging.LogRecord]) -> None:
    async def send(message: Message) -> None:
        raise OSError("connection reset")

    async def receive() -> Message:
        return {"type": "http.request", "body": b""}

    with pytest.raises(OSError, match="reset"):
        await logged(respond())(http_scope(), receive, send)
    assert (parsed(lines)[0]["status"], parsed(lines)[0]["outcome"]) == (499, "disconnect")


@pytest.mark.parametrize("format", ["json", "logfmt", "combined"])
async def test_trap_60_control_characters_never_break_the_line(
    lines: list[logging.LogRecord], format: str
) -> None:
    scope = http_scope(
        headers={"user-agent": "evil\r\n127.0.0.1 - - GET /admin 200", "referer": 'x"\x1b[31m'}
    )
    scope["path"] = "/\n\x1b[31m"
    scope["raw_path"] = b"/%0a%1b[31m"
    await run_asgi(logged(respond(), format=format), scope)
    (text,) = [record.getMessage() for record in lines]
    assert "\n" not in text
    assert "\r" not in text
    assert "\x1b" not in text
    assert "/%0a%1b[31m" in text


async def test_trap_60_raw_control_bytes_in_raw_path_are_percent_encoded(
    lines: list[logging.LogRecord],
) -> None:
    scope = http_scope()
    scope["raw_path"] = b'/a b\r\n"\xff'
    await run_asgi(logged(respond()), scope)
    assert parsed(lines)[0]["path"] == "/a%20b%0D%0A%22%FF"


async def test_trap_61_no_bodies_and_secrets_redacted(lines: list[logging.LogRecord]) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        headers = [(b"set-cookie", b"session=s3cr3t-session"), (b"x-total", b"3")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"response-body-secret"})

    scope = http_scope(
        "POST",
        "/login",
        query_string=b"next=/home&access_token=t0ken&Password=hunter2&client_secret=xyz",
        headers={
            "authorization": "Bearer abc.def",
            "cookie": "session=s3cr3t-session; csrftoken=csrf-value",
            "referer": "https://app.example/cb?code=1&id_token=jwt-secret#frag",
        },
    )
    app = logged(
        app,
        request_headers=["Authorization", "Cookie"],
        response_headers=["Set-Cookie", "X-Total"],
    )
    await run_asgi(app, scope, body=b'{"password": "body-secret"}')
    text = lines[0].getMessage()
    for secret in ("abc.def", "s3cr3t", "csrf-value", "t0ken", "hunter2", "xyz", "jwt-secret"):
        assert secret not in text
        assert secret not in json.dumps(vars(lines[0]), default=str)
    assert "body-secret" not in text
    line = parsed(lines)[0]
    assert line["query"] == (
        "next=/home&access_token=REDACTED&Password=REDACTED&client_secret=REDACTED"
    )
    assert line["referer"] == "https://app.example/cb?code=1&id_token=REDACTED"
    assert line["request.authorization"] == line["response.set-cookie"] == "REDACTED"
    assert line["response.x-total"] == "3"


async def test_trap_62_a_malformed_body_the_app_rejects_stays_a_400(
    lines: list[logging.LogRecord],
) -> None:
    async def parse(request: Request) -> JSONResponse:
        try:
            return JSONResponse(await request.json())
        except ValueError:
            return JSONResponse({"error": "bad json"}, status_code=400)

    app = logged(Starlette(routes=[Route("/items", parse, methods=["POST"])]))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        response = await client.post("/items", content=b"{not json")
    assert response.status_code == 400
    assert (parsed(lines)[0]["status"], parsed(lines)[0]["bytes_received"]) == (400, 9)


@pytest.mark.parametrize(
    "breakage",
    [
        pytest.param("formatter", id="a formatter that raises"),
        pytest.param("state", id="unserialisable state fields"),
        pytest.param("reserved", id="state fields named like LogRecord attributes"),
    ],
)
async def test_trap_62_the_logger_never_raises_into_the_app(
    lines: list[logging.LogRecord], breakage: str
) -> None:
    def bad_format(record: dict[str, Any]) -> str:
        raise ValueError("formatter bug")

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if breakage == "state":
            scope["state"]["access_log"] = {"who": object()}
        if breakage == "reserved":
            scope["state"]["access_log"] = {"msg": "x", "name": "y", "user": 7}
        await respond()(scope, receive, send)

    options: dict[str, Any] = {"format": bad_format} if breakage == "formatter" else {}
    recorded = await run_asgi(logged(app, **options))
    assert recorded.status == 200
    if breakage == "reserved":
        assert parsed(lines)[0]["user"] == 7
        assert lines[0].name == "tests.access"  # the LogRecord's own attributes are intact


async def test_trap_63_the_path_is_logged_as_sent(lines: list[logging.LogRecord]) -> None:
    scope = http_scope(path="/a%b")
    scope["raw_path"] = b"/a%25b"
    await run_asgi(logged(respond()), scope)
    assert parsed(lines)[0]["path"] == "/a%25b"


async def test_trap_64_fields_from_scope_state_reach_the_line(
    lines: list[logging.LogRecord],
) -> None:
    async def whoami(request: Request) -> PlainTextResponse:
        request.state.access_log = {"user_id": 7, "status": "forged"}
        return PlainTextResponse("hi")

    app = logged(Starlette(routes=[Route("/me", whoami)]))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        await client.get("/me")
    line = parsed(lines)[0]
    assert line["user_id"] == 7
    assert line["status"] == 200  # the app's fields never replace measured ones
    assert lines[0].user_id == 7  # type: ignore[attr-defined]  # also an extra field


async def test_an_app_that_raises_after_a_200_is_logged_200_error(
    lines: list[logging.LogRecord],
) -> None:
    sent: list[Message] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"partial", "more_body": True})
        raise RuntimeError("stream broke")

    async def receive() -> Message:
        return {"type": "http.request", "body": b""}

    async def send(message: Message) -> None:
        sent.append(message)

    with pytest.raises(RuntimeError):
        await logged(app)(http_scope(), receive, send)
    assert sent[0]["status"] == 200  # the sent message is never rewritten
    assert (parsed(lines)[0]["status"], parsed(lines)[0]["outcome"]) == (200, "error")


async def test_messages_are_forwarded_as_the_same_objects(
    lines: list[logging.LogRecord],
) -> None:
    messages: list[Message] = [
        {"type": "http.response.start", "status": 200, "headers": [(b"a", b"b")]},
        {"type": "http.response.body", "body": b"x"},
    ]
    sent: list[Message] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        for message in messages:
            await send(message)

    async def receive() -> Message:
        return {"type": "http.request", "body": b""}

    async def send(message: Message) -> None:
        sent.append(message)

    scope = http_scope()
    await logged(app)(scope, receive, send)
    assert all(a is b for a, b in zip(sent, messages, strict=True))
    assert sent[0] == {"type": "http.response.start", "status": 200, "headers": [(b"a", b"b")]}


@pytest.mark.parametrize(
    ("outcome", "status"),
    [
        pytest.param("limited", 429, id="rate limited"),
        pytest.param("timeout", 504, id="timed out"),
        pytest.param("too_large", 413, id="body too large"),
    ],
)
async def test_outcomes_recorded_by_guards_are_logged(
    lines: list[logging.LogRecord], outcome: Any, status: int
) -> None:
    async def guard(scope: Scope, receive: Receive, send: Send) -> None:
        set_outcome(scope, outcome)
        await respond(status)(scope, receive, send)

    await run_asgi(logged(guard))
    assert (parsed(lines)[0]["status"], parsed(lines)[0]["outcome"]) == (status, outcome)


async def test_sampling_keeps_every_failure_and_a_fraction_of_successes(
    lines: list[logging.LogRecord],
) -> None:
    draws = iter([0.05, 0.5, 0.09, 0.99])
    ok = logged(respond(200), sample_rate=0.1, random=lambda: next(draws))
    failing = logged(respond(500), sample_rate=0.1, random=lambda: 1.0)
    for _ in range(4):
        await run_asgi(ok)
    await run_asgi(failing)
    assert [line["status"] for line in parsed(lines)] == [200, 200, 500]


async def test_a_disabled_logger_costs_a_pass_through(lines: list[logging.LogRecord]) -> None:
    seen: list[Send] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(send)
        await respond()(scope, receive, send)

    await run_asgi(logged(app, level=logging.DEBUG), validate=False)
    assert lines == []
    assert seen[0].__name__ != "send_counting"


async def test_route_template_client_and_user_agent(lines: list[logging.LogRecord]) -> None:
    async def user(request: Request) -> PlainTextResponse:
        return PlainTextResponse("u")

    app = logged(Starlette(routes=[Route("/users/{user_id:int}", user)]))
    transport = httpx.ASGITransport(app=app, client=("203.0.113.9", 4000))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        await client.get("/users/7?page=2", headers={"user-agent": "probe/1"})
    line = parsed(lines)[0]
    assert (line["route"], line["path"], line["query"]) == (
        "/users/{user_id}",
        "/users/7",
        "page=2",
    )
    assert (line["client"], line["user_agent"], line["protocol"]) == (
        "203.0.113.9",
        "probe/1",
        "HTTP/1.1",
    )


async def test_litestar_route_template_reaches_the_line(lines: list[logging.LogRecord]) -> None:
    @get("/orders/{order_id:int}", sync_to_thread=False)
    def order(order_id: FromPath[int]) -> str:
        return f"order {order_id}"

    app = logged(Litestar(route_handlers=[order]))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        await client.get("/orders/5")
    line = parsed(lines)[0]
    assert (line["route"], line["path"], line["status"]) == (
        "/orders/{order_id}",
        "/orders/5",
        200,
    )


async def test_trap_58_excluding_the_root_path_keeps_every_other_line(
    lines: list[logging.LogRecord],
) -> None:
    app = logged(respond(), exclude_paths=["/"])
    for path in ("/", "/items", "/health"):
        await run_asgi(app, http_scope(path=path))
    assert [line["path"] for line in parsed(lines)] == ["/items", "/health"]
