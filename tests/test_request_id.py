"""RequestIDMiddleware: generated and accepted ids, the trust rules, the response header set
(never appended), the context variable, the scope key and the logging filter."""

from __future__ import annotations

import io
import logging
from typing import Any

import anyio
import pytest
from hypothesis import given
from hypothesis import strategies as st

from middlewares._types import Message, Receive, Scope, Send
from middlewares.request_id import (
    SCOPE_KEY,
    RequestIDFilter,
    RequestIDMiddleware,
    get_request_id,
    is_valid_request_id,
    new_request_id,
    request_id,
)
from middlewares.testing import http_scope, run_asgi, websocket_scope

pytestmark = pytest.mark.anyio


def ids(*values: str) -> Any:
    queue = list(values)
    return lambda: queue.pop(0)


def echo(seen: list[dict[str, Any]], headers: list[Any] | None = None) -> Any:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(
            {
                "context": get_request_id(),
                "scope": scope[SCOPE_KEY],
                "header": [v for k, v in scope["headers"] if k == b"x-request-id"],
            }
        )
        await send({"type": "http.response.start", "status": 200, "headers": headers or []})
        await send({"type": "http.response.body", "body": b""})

    return app


async def test_generates_an_id_when_none_arrives() -> None:
    seen: list[dict[str, Any]] = []
    result = await run_asgi(RequestIDMiddleware(echo(seen), generator=ids("check", "id-1")))
    assert result.header_all("x-request-id") == ["id-1"]
    assert seen == [{"context": "id-1", "scope": "id-1", "header": [b"id-1"]}]
    assert get_request_id() is None  # reset once the request is over


async def test_default_ids_are_32_random_hex_digits() -> None:
    middleware = RequestIDMiddleware(echo([]))
    first = (await run_asgi(middleware)).header("x-request-id")
    second = (await run_asgi(middleware)).header("x-request-id")
    assert first is not None
    assert len(first) == 32
    assert int(first, 16) >= 0
    assert first != second
    assert len(new_request_id()) == 32


@pytest.mark.parametrize(
    "incoming",
    [
        pytest.param("4f1c2a9e-0b7d-4c1e-9a55-6d2f8e1b3c70", id="UUID"),
        pytest.param("01HZX3V6Q8K4N2M7P9R5T1W0YB", id="ULID"),
        pytest.param("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", id="traceparent"),
        pytest.param("Root=1-5759e988-bd862e3fe1be46a994272793", id="AWS trace id"),
        pytest.param("a" * 128, id="128 characters"),
    ],
)
async def test_accepts_a_valid_incoming_id(incoming: str) -> None:
    seen: list[dict[str, Any]] = []
    middleware = RequestIDMiddleware(echo(seen), generator=ids("check"))
    result = await run_asgi(middleware, http_scope(headers={"X-Request-ID": incoming}))
    assert result.header_all("x-request-id") == [incoming]
    assert seen[0]["context"] == incoming
    assert seen[0]["header"] == [incoming.encode()]


@pytest.mark.parametrize(
    "incoming",
    [
        pytest.param(b"abc\r\nINFO forged log line", id="CR LF (log injection)"),
        pytest.param(b"a" * 129, id="too long"),
        pytest.param(b"", id="empty"),
        pytest.param(b"id with spaces", id="spaces"),
        pytest.param(b'"quoted"', id="quotes"),
        pytest.param(b"%0d%0a", id="percent-encoding"),
        pytest.param("idé".encode(), id="non-ASCII"),
        pytest.param(b"\x1b[31mred", id="terminal escape"),
    ],
)
async def test_replaces_an_invalid_incoming_id_without_logging_it(
    incoming: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[dict[str, Any]] = []
    middleware = RequestIDMiddleware(echo(seen), generator=ids("check", "fresh"))
    with caplog.at_level(logging.INFO, logger="middlewares.request_id"):
        result = await run_asgi(middleware, http_scope(headers=[(b"x-request-id", incoming)]))
    assert result.header_all("x-request-id") == ["fresh"]
    # Code that reads the request header never sees the rejected value either.
    assert seen == [{"context": "fresh", "scope": "fresh", "header": [b"fresh"]}]
    assert "fresh" in caplog.text
    if incoming:
        assert incoming.decode("latin-1") not in caplog.text


@given(st.binary(max_size=200))
def test_validator_never_lets_a_control_character_through(raw: bytes) -> None:
    text = raw.decode("latin-1")
    if is_valid_request_id(text):
        assert text.isascii()
        assert text.isprintable()
        assert " " not in text
        assert 1 <= len(text) <= 128


@given(st.binary(max_size=300))
def test_any_incoming_bytes_give_a_safe_id(raw: bytes) -> None:
    middleware = RequestIDMiddleware(echo([]))
    chosen = middleware.choose(raw)
    assert is_valid_request_id(chosen)
    assert chosen == raw.decode("latin-1") or len(chosen) == 32


async def test_the_app_s_own_header_is_replaced_not_duplicated() -> None:
    own = [(b"X-Request-ID", b"from-app"), (b"content-type", b"text/plain")]
    middleware = RequestIDMiddleware(echo([], headers=own), generator=ids("check", "ours"))
    result = await run_asgi(middleware)
    assert result.header_all("x-request-id") == ["ours"]
    assert result.header("content-type") == "text/plain"
    assert own[0] == (b"X-Request-ID", b"from-app")  # the app's list is left alone


async def test_custom_header_and_validator() -> None:
    seen: list[dict[str, Any]] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(dict(scope["headers"]))
        await echo([])(scope, receive, send)

    middleware = RequestIDMiddleware(
        app,
        header_name="X-Correlation-ID",
        validator=lambda value: value.startswith("req_"),
        generator=ids("req_check", "req_new"),
    )
    kept = await run_asgi(middleware, http_scope(headers={"x-correlation-id": "req_42"}))
    replaced = await run_asgi(middleware, http_scope(headers={"x-correlation-id": "42"}))
    assert kept.header("x-correlation-id") == "req_42"
    assert replaced.header("x-correlation-id") == "req_new"
    assert seen[1][b"x-correlation-id"] == b"req_new"


async def test_request_header_can_be_left_as_received() -> None:
    seen: list[dict[str, Any]] = []
    middleware = RequestIDMiddleware(
        echo(seen), update_request_header=False, generator=ids("check", "new")
    )
    await run_asgi(middleware, http_scope(headers={"x-request-id": "bad id"}))
    assert seen[0]["header"] == [b"bad id"]
    assert seen[0]["context"] == "new"


PROXIES = ["10.0.0.0/8", "192.0.2.7", "2001:db8::/32"]


@pytest.mark.parametrize(
    ("client", "trusted", "accepted"),
    [
        pytest.param(("10.1.2.3", 5000), PROXIES, True, id="inside a trusted network"),
        pytest.param(("192.0.2.7", 5000), PROXIES, True, id="trusted address"),
        pytest.param(("2001:db8::1", 5000), PROXIES, True, id="trusted IPv6 network"),
        pytest.param(("203.0.113.9", 5000), PROXIES, False, id="untrusted client"),
        pytest.param(("not-an-ip", 5000), PROXIES, False, id="client is not an address"),
        pytest.param(None, PROXIES, False, id="unix socket"),
        pytest.param(("192.0.2.7", 5000), ["192.0.2.7"], True, id="addresses only"),
        pytest.param(("192.0.2.8", 5000), ["192.0.2.7"], False, id="addresses only, other"),
        pytest.param(("203.0.113.9", 5000), None, True, id="no list: every client"),
        pytest.param(("10.1.2.3", 5000), [], False, id="empty list: nobody"),
    ],
)
async def test_incoming_ids_only_from_trusted_proxies(
    client: tuple[str, int] | None, trusted: list[str] | None, accepted: bool
) -> None:
    seen: list[dict[str, Any]] = []
    middleware = RequestIDMiddleware(
        echo(seen), trusted_proxies=trusted, generator=ids("check", "generated")
    )
    scope = http_scope(headers={"x-request-id": "from-proxy"}, client=client)
    result = await run_asgi(middleware, scope)
    expected = "from-proxy" if accepted else "generated"
    assert result.header_all("x-request-id") == [expected]
    assert seen[0]["header"] == [expected.encode()]


async def test_websocket_handshake_gets_the_id() -> None:
    seen: list[str | None] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        seen.append(request_id.get())
        await send({"type": "websocket.accept", "headers": [(b"x-request-id", b"app")]})
        await send({"type": "websocket.close", "code": 1000})

    middleware = RequestIDMiddleware(app, generator=ids("check", "ws-1"))
    result = await run_asgi(middleware, websocket_scope())
    [accept] = result.of_type("websocket.accept")
    assert accept["headers"] == [(b"x-request-id", b"ws-1")]
    assert seen == ["ws-1"]


async def test_lifespan_passes_through_untouched() -> None:
    calls: list[Any] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        calls.extend([scope, receive, send])

    async def receive() -> Message:
        raise AssertionError

    async def send(message: Message) -> None:
        raise AssertionError

    scope = {"type": "lifespan", "asgi": {"version": "3.0"}}
    await RequestIDMiddleware(app)(scope, receive, send)
    assert calls == [{"type": "lifespan", "asgi": {"version": "3.0"}}, receive, send]


async def test_concurrent_requests_see_their_own_id_in_logs() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RequestIDFilter())
    handler.setFormatter(logging.Formatter("%(request_id)s %(message)s"))
    log = logging.getLogger("tests.request_id")
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    both = anyio.Event()
    arrived: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        log.info("start %s", scope["path"])
        arrived.append(scope["path"])
        if len(arrived) == 2:
            both.set()
        await both.wait()
        log.info("end %s", scope["path"])
        await echo([])(scope, receive, send)

    middleware = RequestIDMiddleware(app)
    try:
        async with anyio.create_task_group() as group:
            for name in ("a", "b"):
                scope = http_scope(path=f"/{name}", headers={"x-request-id": f"id-{name}"})
                group.start_soon(run_asgi, middleware, scope)
        log.info("outside")
    finally:
        log.removeHandler(handler)
    lines = sorted(stream.getvalue().splitlines())
    assert lines == ["- outside", "id-a end /a", "id-a start /a", "id-b end /b", "id-b start /b"]


def test_log_filter_options() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "message", None, None)
    assert RequestIDFilter(attribute="rid", default="none").filter(record)
    assert record.rid == "none"  # type: ignore[attr-defined]
    token = request_id.set("abc")
    try:
        RequestIDFilter().filter(record)
    finally:
        request_id.reset(token)
    assert record.request_id == "abc"  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match="attribute must be a Python identifier"):
        RequestIDFilter(attribute="request-id")


async def noop_app(scope: Any, receive: Any, send: Any) -> None:
    return None


@pytest.mark.parametrize(
    ("options", "error", "match"),
    [
        pytest.param({"header_name": "X Request"}, ValueError, "header_name", id="bad header"),
        pytest.param({"generator": "uuid"}, TypeError, "generator must be", id="no generator"),
        pytest.param({"validator": True}, TypeError, "validator must be", id="no validator"),
        pytest.param(
            {"generator": lambda: "a\r\nb"}, ValueError, "generator must return", id="bad id"
        ),
        pytest.param({"generator": lambda: 42}, ValueError, "generator must return", id="int id"),
        pytest.param(
            {"trusted_proxies": ["10.0.0.0/33"]}, ValueError, "trusted_proxies", id="bad network"
        ),
        pytest.param(
            {"trusted_proxies": "10.0.0.1"}, TypeError, "got the string", id="string not list"
        ),
    ],
)
def test_bad_configuration_names_the_argument(
    options: dict[str, Any], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        RequestIDMiddleware(noop_app, **options)
