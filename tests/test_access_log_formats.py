"""The access record's formats, redaction and outcome rules, WebSockets, and configuration."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from middlewares._types import Receive, Scope, Send
from middlewares.access_log import (
    AccessLogMiddleware,
    build_record,
    format_combined,
    format_json,
    format_logfmt,
    record_from_timing,
    redact_query,
    request_outcome,
)
from middlewares.testing import http_scope, run_asgi, websocket_scope
from middlewares.timing import RequestTiming, TimingMiddleware

from .logs import collected

pytestmark = pytest.mark.anyio

LOGGER = logging.getLogger("tests.access.formats")
LOGGER.setLevel(logging.INFO)
LOGGER.propagate = False

RECORD: dict[str, Any] = {
    "time": "2026-11-30T05:36:22.123Z",
    "method": "GET",
    "path": "/a%20b",
    "query": "q=1",
    "protocol": "HTTP/1.1",
    "status": 200,
    "outcome": "ok",
    "duration_ms": 1.5,
    "bytes_sent": 5,
    "client": "10.0.0.1",
    "user_agent": 'curl "x"\n',
    "cached": True,
}


@pytest.fixture
def lines() -> Iterator[list[logging.LogRecord]]:
    with collected(LOGGER) as records:
        yield records


async def hello(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"hello"})


def test_json_is_one_escaped_object() -> None:
    text = format_json(RECORD)
    assert "\n" not in text
    assert json.loads(text) == RECORD


def test_logfmt_quotes_and_escapes_what_needs_it() -> None:
    assert format_logfmt(RECORD) == (
        'time=2026-11-30T05:36:22.123Z method=GET path=/a%20b query="q=1" protocol=HTTP/1.1'
        " status=200 outcome=ok duration_ms=1.5 bytes_sent=5 client=10.0.0.1"
        ' user_agent="curl \\"x\\"\\n" cached=true'
    )
    assert format_logfmt({"bad key=": "", "request.x-a": "v"}) == 'bad_key_="" request.x-a=v'


def test_combined_is_apaches_format() -> None:
    assert format_combined(RECORD) == (
        '10.0.0.1 - - [30/Nov/2026:05:36:22 +0000] "GET /a%20b?q=1 HTTP/1.1" 200 5'
        ' "-" "curl \\"x\\"\\x0a"'
    )


def test_combined_without_time_bytes_or_client() -> None:
    text = format_combined({"method": "GET", "path": "/", "status": 204, "referer": "ü\U0001f600"})
    assert text == '- - - - "GET / HTTP/1.1" 204 - "\\xfc\\u1f600" "-"'


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        pytest.param(b"", "", id="empty"),
        pytest.param(b"a=1&b=2", "a=1&b=2", id="nothing secret"),
        pytest.param(b"api_key=k&x=1", "api_key=REDACTED&x=1", id="api key"),
        pytest.param(b"API%5FKEY=k", "API%5FKEY=REDACTED", id="encoded name"),
        pytest.param(b"my+token=k", "my+token=REDACTED", id="plus in the name"),
        pytest.param(b"token", "token", id="a flag without a value"),
        pytest.param(b"q=a b\x00", "q=a%20b%00", id="unsafe bytes percent-encoded"),
    ],
)
def test_redact_query(query: bytes, expected: str) -> None:
    assert redact_query(query) == expected


def test_redact_query_names_are_configurable() -> None:
    assert redact_query(b"token=1&pin=2", ["pin"]) == "token=1&pin=REDACTED"


@given(st.binary(max_size=200))
def test_redact_query_never_raises_and_is_printable(query: bytes) -> None:
    text = redact_query(query)
    assert re.fullmatch(r"[\x21-\x7e]*", text)
    assert '"' not in text
    assert "\\" not in text


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        pytest.param((200, True, None, False, None), (200, "ok"), id="complete"),
        pytest.param((200, True, ValueError(), False, None), (200, "error"), id="raised after"),
        pytest.param((None, False, ValueError(), False, None), (500, "error"), id="raised before"),
        pytest.param((None, False, None, False, None), (500, "error"), id="returned, no reply"),
        pytest.param((200, False, None, True, None), (499, "disconnect"), id="client left"),
        pytest.param(
            (None, False, KeyboardInterrupt(), False, None), (499, "disconnect"), id="cancelled"
        ),
        pytest.param((429, True, None, False, "limited"), (429, "limited"), id="guard recorded"),
        pytest.param(
            (200, True, None, True, None),
            (499, "disconnect"),
            id="left, then the app answered to no one",
        ),
        pytest.param(
            (200, True, KeyboardInterrupt(), False, None), (200, "ok"), id="cancelled after the end"
        ),
    ],
)
def test_request_outcome(arguments: tuple[Any, ...], expected: tuple[int, str]) -> None:
    status, complete, error, disconnected, recorded = arguments
    assert (
        request_outcome(
            status, complete=complete, error=error, disconnected=disconnected, recorded=recorded
        )
        == expected
    )


@pytest.mark.parametrize(
    ("accept", "expected_status"),
    [pytest.param(True, 101, id="accepted"), pytest.param(False, 403, id="refused")],
)
async def test_one_record_per_websocket_connection(
    lines: list[logging.LogRecord], accept: bool, expected_status: int
) -> None:
    async def echo(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        if not accept:
            await send({"type": "websocket.close", "code": 1008})
            return
        await send({"type": "websocket.accept"})
        message = await receive()
        await send({"type": "websocket.send", "text": message.get("text")})
        await send({"type": "websocket.close", "code": 1000})

    app = AccessLogMiddleware(echo, logger=LOGGER)
    messages = [{"type": "websocket.receive", "text": "héllo"}] if accept else []
    await run_asgi(app, websocket_scope("/ws"), websocket_messages=messages)
    (line,) = [json.loads(record.getMessage()) for record in lines]
    assert (line["method"], line["path"], line["status"], line["outcome"]) == (
        "WEBSOCKET",
        "/ws",
        expected_status,
        "ok",
    )
    if accept:
        assert (line["bytes_received"], line["bytes_sent"]) == (6, 6)


async def test_websocket_denial_response_and_binary_frames(
    lines: list[logging.LogRecord],
) -> None:
    async def deny(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.http.response.start", "status": 401, "headers": []})
        await send({"type": "websocket.http.response.body", "body": b"no"})

    await run_asgi(AccessLogMiddleware(deny, logger=LOGGER), websocket_scope(), validate=False)
    line = json.loads(lines[0].getMessage())
    assert (line["status"], line["bytes_sent"]) == (401, 2)


async def test_pathsend_completes_the_response(lines: list[logging.LogRecord]) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.pathsend", "path": "/etc/hostname"})

    await run_asgi(AccessLogMiddleware(app, logger=LOGGER), validate=False)
    assert json.loads(lines[0].getMessage())["outcome"] == "ok"


async def test_a_formatter_returning_none_logs_nothing(lines: list[logging.LogRecord]) -> None:
    shipped: list[dict[str, Any]] = []

    def ship(record: dict[str, Any]) -> None:
        shipped.append(record)

    await run_asgi(AccessLogMiddleware(hello, logger=LOGGER, format=ship))
    assert lines == []
    assert shipped[0]["status"] == 200


async def test_logger_by_name_and_level(lines: list[logging.LogRecord]) -> None:
    app = AccessLogMiddleware(hello, logger="tests.access.formats", level=logging.WARNING)
    await run_asgi(app)
    assert lines[0].levelno == logging.WARNING


@pytest.fixture
def unconfigured() -> Iterator[logging.Logger]:
    logger = logging.getLogger("middlewares.access")
    saved = logger.handlers[:], logger.level, logger.propagate
    logger.handlers[:] = []
    logger.setLevel(logging.NOTSET)
    yield logger
    logger.handlers[:], level, logger.propagate = saved
    logger.setLevel(level)


async def test_the_default_logger_prints_when_logging_is_not_configured(
    unconfigured: logging.Logger,
) -> None:
    AccessLogMiddleware(hello)
    (handler,) = unconfigured.handlers
    assert unconfigured.level == logging.INFO
    assert not unconfigured.propagate
    assert isinstance(handler, logging.StreamHandler)
    with collected(unconfigured) as records:
        await run_asgi(AccessLogMiddleware(hello, format=None))
    assert json.loads(records[0].getMessage())["path"] == "/"
    assert len(unconfigured.handlers) == 1  # configured once


async def test_a_configured_default_logger_is_left_alone(unconfigured: logging.Logger) -> None:
    unconfigured.setLevel(logging.INFO)  # records propagate to the app's own handlers
    AccessLogMiddleware(hello)
    assert unconfigured.handlers == []
    assert unconfigured.propagate


async def test_the_timing_hook_builds_the_same_record(lines: list[logging.LogRecord]) -> None:
    records: list[dict[str, Any]] = []

    def hook(timing: RequestTiming) -> None:
        records.append(record_from_timing(timing))

    direct = AccessLogMiddleware(hello, logger=LOGGER)
    via_hook = TimingMiddleware(hello, on_timing=hook, expose="never")
    scope = http_scope(path="/items", query_string=b"token=1", headers={"user-agent": "ua"})
    await run_asgi(direct, dict(scope))
    await run_asgi(via_hook, dict(scope))
    logged = json.loads(lines[0].getMessage())
    shared = {"method", "path", "query", "protocol", "status", "outcome", "client", "user_agent"}
    assert {key: logged[key] for key in shared} == {key: records[0][key] for key in shared}
    assert records[0]["query"] == "token=REDACTED"


async def test_the_timing_hook_reports_a_disconnect_as_the_access_log_does() -> None:
    records: list[dict[str, Any]] = []

    async def long_poll(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()

    async def client_leaves() -> dict[str, Any]:
        return {"type": "http.disconnect"}

    app = TimingMiddleware(long_poll, on_timing=lambda t: records.append(record_from_timing(t)))
    await run_asgi(app, receive=client_leaves)
    assert (records[0]["status"], records[0]["outcome"]) == (499, "disconnect")


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        pytest.param({"format": "xml"}, ValueError, "format must be", id="unknown format"),
        pytest.param({"logger": 3}, TypeError, "logger must be", id="logger not a Logger"),
        pytest.param({"sample_rate": 2}, ValueError, "between 0 and 1", id="rate above 1"),
        pytest.param({"sample_rate": "1"}, TypeError, "sample_rate", id="rate not a number"),
        pytest.param({"clock": 1}, TypeError, "clock", id="clock not callable"),
        pytest.param({"request_headers": "cookie"}, TypeError, "string", id="headers a string"),
        pytest.param({"response_headers": ["a b"]}, ValueError, "header names", id="bad name"),
        pytest.param({"redact_query_params": "token"}, TypeError, "string", id="params a string"),
        pytest.param({"exclude_paths": ["health"]}, ValueError, "'/'", id="relative path"),
    ],
)
def test_bad_configuration_names_the_argument(
    options: dict[str, Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        AccessLogMiddleware(hello, **options)


async def test_websocket_client_disconnect_and_binary_frames(
    lines: list[logging.LogRecord],
) -> None:
    async def sink(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        while (await receive())["type"] != "websocket.disconnect":
            await send({"type": "websocket.send", "bytes": b"\x00\x01"})

    script = iter(
        [
            {"type": "websocket.connect"},
            {"type": "websocket.receive", "bytes": b"abc"},
            {"type": "websocket.receive"},
            {"type": "websocket.disconnect", "code": 1001},
        ]
    )

    async def receive() -> dict[str, Any]:
        return next(script)

    await run_asgi(AccessLogMiddleware(sink, logger=LOGGER), websocket_scope(), receive=receive)
    line = json.loads(lines[0].getMessage())
    assert (line["status"], line["outcome"]) == (101, "ok")
    assert (line["bytes_received"], line["bytes_sent"]) == (3, 4)


async def test_unknown_messages_pass_and_a_scope_without_raw_path(
    lines: list[logging.LogRecord],
) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.early_hint", "links": []})
        await send({"type": "http.response.body", "body": b""})

    scope = http_scope(path="/café")
    del scope["raw_path"]
    recorded = await run_asgi(AccessLogMiddleware(app, logger=LOGGER), scope, validate=False)
    assert recorded.of_type("http.response.early_hint")
    assert json.loads(lines[0].getMessage())["path"] == "/caf%C3%A9"


@given(
    raw_path=st.binary(max_size=80),
    query=st.binary(max_size=80),
    agent=st.binary(max_size=80),
    referer=st.binary(max_size=80),
)
def test_any_client_bytes_make_one_printable_line_in_every_format(
    raw_path: bytes, query: bytes, agent: bytes, referer: bytes
) -> None:
    scope = http_scope(query_string=query, headers=[(b"user-agent", agent), (b"referer", referer)])
    scope["raw_path"] = raw_path
    record = build_record(scope, status=200, outcome="ok", started=0.0)
    for formatter in (format_json, format_logfmt, format_combined):
        text = formatter(record)
        assert re.fullmatch(r"[\x20-\x7e]*", text), text


@pytest.mark.parametrize(
    ("uvicorn_logs", "warned"),
    [
        pytest.param(True, True, id="uvicorn's access log on: warned"),
        pytest.param(False, False, id="--no-access-log: quiet"),
    ],
)
def test_trap_57_warns_when_uvicorn_would_log_every_request_too(
    uvicorn_logs: bool, warned: bool
) -> None:
    uvicorn_access = logging.getLogger("uvicorn.access")
    saved = uvicorn_access.handlers[:]
    uvicorn_access.handlers[:] = [logging.NullHandler()] if uvicorn_logs else []
    try:
        with collected(logging.getLogger("middlewares.access_log")) as records:
            AccessLogMiddleware(hello, logger=LOGGER)
    finally:
        uvicorn_access.handlers[:] = saved
    assert bool(records) == warned
    if warned:
        assert "--no-access-log" in records[0].getMessage()


async def test_a_short_event_name_with_the_fields_as_extras(
    lines: list[logging.LogRecord],
) -> None:
    await run_asgi(AccessLogMiddleware(hello, logger=LOGGER, format=lambda record: "http request"))
    (record,) = lines
    assert record.getMessage() == "http request"
    assert (record.status, record.method, record.bytes_sent) == (200, "GET", 5)  # type: ignore[attr-defined]
