"""WSGIMiddleware in-process: environ, start_response, write(), file_wrapper, close(), input."""

from __future__ import annotations

import io
import sys
import threading
from collections.abc import Iterator
from typing import Any

import anyio
import pytest

from middlewares.testing import http_scope, run_asgi, websocket_scope
from middlewares.wsgi import (
    ClientDisconnected,
    FileWrapper,
    WSGIMiddleware,
    build_environ,
    environ_headers,
    parse_status,
)

pytestmark = pytest.mark.anyio


def hello(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain"), ("X-Many", "a")])
    return [b"Hello, ", b"world"]


def echo_environ(keys: list[str]) -> Any:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [])
        return [repr({k: environ.get(k) for k in keys}).encode()]

    return app


@pytest.mark.parametrize(
    ("scope", "expected"),
    [
        pytest.param(
            http_scope("GET", "/users/1", query_string=b"a=1&b=%C3%A9"),
            {"SCRIPT_NAME": "", "PATH_INFO": "/users/1", "QUERY_STRING": "a=1&b=%C3%A9"},
            id="plain path and raw query string",
        ),
        pytest.param(
            http_scope("GET", "/users/1", root_path="/api"),
            {"SCRIPT_NAME": "/api", "PATH_INFO": "/users/1"},
            id="root_path becomes SCRIPT_NAME",
        ),
        pytest.param(
            http_scope("GET", "", root_path="/api"),
            {"SCRIPT_NAME": "/api", "PATH_INFO": ""},
            id="the mount point itself has an empty PATH_INFO",
        ),
        pytest.param(
            {**http_scope("GET", "/apiary"), "root_path": "/api"},
            {"SCRIPT_NAME": "/api", "PATH_INFO": "/apiary"},
            id="root_path only strips whole segments",
        ),
        pytest.param(
            http_scope("GET", "/café"),
            {"PATH_INFO": "/caf\xc3\xa9"},
            id="non-ASCII path is UTF-8 bytes decoded as Latin-1",
        ),
        pytest.param(
            http_scope("POST", "/", client=("10.0.0.7", 4321), server=("example.org", 8443)),
            {
                "REQUEST_METHOD": "POST",
                "REMOTE_ADDR": "10.0.0.7",
                "REMOTE_PORT": "4321",
                "SERVER_NAME": "example.org",
                "SERVER_PORT": "8443",
            },
            id="client and server addresses",
        ),
        pytest.param(
            http_scope("GET", "/", client=None, server=None, scheme="https", http_version="2"),
            {
                "REMOTE_ADDR": None,
                "SERVER_NAME": "localhost",
                "SERVER_PORT": "80",
                "wsgi.url_scheme": "https",
                "SERVER_PROTOCOL": "HTTP/2",
            },
            id="no client or server (unix socket) and https",
        ),
        pytest.param(
            http_scope("GET", "/", server=("sock", None)),
            {"SERVER_NAME": "sock", "SERVER_PORT": "80"},
            id="server without a port",
        ),
    ],
)
def test_environ_from_scope(scope: dict[str, Any], expected: dict[str, Any]) -> None:
    environ = build_environ(scope, None)  # type: ignore[arg-type]
    assert {k: environ.get(k) for k in expected} == expected
    assert environ["wsgi.input_terminated"] is True
    assert environ["wsgi.file_wrapper"] is FileWrapper
    assert environ["wsgi.version"] == (1, 0)


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        pytest.param(
            [(b"accept", b"text/html"), (b"accept", b"*/*")],
            {"HTTP_ACCEPT": "text/html, */*"},
            id="repeated header joined with a comma",
        ),
        pytest.param(
            [(b"cookie", b"a=1"), (b"cookie", b"b=2")],
            {"HTTP_COOKIE": "a=1; b=2"},
            id="repeated cookie joined with a semicolon",
        ),
        pytest.param(
            [(b"content-type", b"text/plain"), (b"content-length", b"3")],
            {"CONTENT_TYPE": "text/plain", "CONTENT_LENGTH": "3"},
            id="content type and length without HTTP_ prefix",
        ),
        pytest.param(
            [(b"x-forwarded-for", b"1.2.3.4"), (b"x_forwarded_for", b"6.6.6.6")],
            {"HTTP_X_FORWARDED_FOR": "1.2.3.4"},
            id="underscore header cannot impersonate a dashed one",
        ),
        pytest.param(
            [(b"x-name", b"caf\xe9")],
            {"HTTP_X_NAME": "café"},
            id="header values decoded as Latin-1",
        ),
    ],
)
def test_request_headers(headers: list[tuple[bytes, bytes]], expected: dict[str, str]) -> None:
    assert environ_headers(headers) == expected


@pytest.mark.parametrize(
    ("status", "code"),
    [pytest.param("200 OK", 200, id="with reason"), pytest.param("204", 204, id="bare code")],
)
def test_parse_status(status: str, code: int) -> None:
    assert parse_status(status) == code


@pytest.mark.parametrize("status", ["OK", "20 OK", "200OK", "abc def", ""])
def test_parse_status_rejects_malformed(status: str) -> None:
    with pytest.raises(ValueError, match="WSGI status must look like"):
        parse_status(status)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        pytest.param({"workers": 0}, "workers must be a positive integer, got 0", id="workers"),
        pytest.param({"send_queue_size": True}, "send_queue_size", id="queue size bool"),
        pytest.param({"prefetch_size": -1}, "prefetch_size", id="prefetch"),
    ],
)
def test_bad_configuration(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        WSGIMiddleware(hello, **kwargs)


async def test_hello_world() -> None:
    recorded = await run_asgi(WSGIMiddleware(hello), http_scope())
    assert recorded.status == 200
    assert recorded.header("content-type") == "text/plain"
    assert recorded.body == b"Hello, world"
    # A list has a known length: its last item ends the body, no empty message after it.
    assert recorded.of_type("http.response.body")[-1]["more_body"] is False
    assert recorded.body_chunks == [b"Hello, ", b"world"]


async def test_environ_through_the_middleware() -> None:
    app = echo_environ(["PATH_INFO", "SCRIPT_NAME", "HTTP_X_A", "wsgi.multithread"])
    scope = http_scope("GET", "/x", root_path="/r", headers=[("x-a", "1"), ("x-a", "2")])
    recorded = await run_asgi(WSGIMiddleware(app), scope)
    assert (
        recorded.body
        == repr(
            {"PATH_INFO": "/x", "SCRIPT_NAME": "/r", "HTTP_X_A": "1, 2", "wsgi.multithread": True}
        ).encode()
    )


async def test_empty_iterable_sends_headers_and_empty_body() -> None:
    def app(environ: Any, start_response: Any) -> list[bytes]:
        start_response("204 No Content", [])
        return []

    recorded = await run_asgi(WSGIMiddleware(app))
    assert recorded.status == 204
    assert recorded.body == b""


async def test_headers_wait_for_the_first_non_empty_chunk() -> None:
    def app(environ: Any, start_response: Any) -> Iterator[bytes]:
        start_response("200 OK", [])
        yield b""
        try:
            raise ValueError("late failure")
        except ValueError:
            # PEP 3333: nothing was sent yet, so the status may still change.
            start_response("503 Service Unavailable", [], sys.exc_info())
        yield b"x"

    with pytest.raises(ValueError, match="late failure"):  # re-raised once the 503 was sent
        await run_asgi(WSGIMiddleware(app))


async def test_second_start_response_without_exc_info_is_an_error() -> None:
    def app(environ: Any, start_response: Any) -> list[bytes]:
        start_response("200 OK", [])
        start_response("500 Internal Server Error", [])
        return []

    with pytest.raises(RuntimeError, match="start_response\\(\\) called a second time"):
        await run_asgi(WSGIMiddleware(app))


async def test_exc_info_after_headers_reraises_and_closes() -> None:
    closed = threading.Event()

    class Body:
        def __init__(self, start_response: Any) -> None:
            self.start_response = start_response

        def __iter__(self) -> Iterator[bytes]:
            yield b"partial"
            try:
                raise KeyError("late")
            except KeyError:
                self.start_response("500 Internal Server Error", [], sys.exc_info())
            yield b"never"

        def close(self) -> None:
            closed.set()

    def app(environ: Any, start_response: Any) -> Body:
        start_response("200 OK", [])
        return Body(start_response)

    with pytest.raises(KeyError, match="late"):
        await run_asgi(WSGIMiddleware(app), validate=False)
    assert closed.is_set()


async def test_write_callable() -> None:
    def app(environ: Any, start_response: Any) -> list[bytes]:
        write = start_response("200 OK", [])
        write(b"written ")
        return [b"returned"]

    recorded = await run_asgi(WSGIMiddleware(app))
    assert recorded.body == b"written returned"


async def test_write_rejects_text() -> None:
    def app(environ: Any, start_response: Any) -> list[bytes]:
        start_response("200 OK", [])("text")
        return []

    with pytest.raises(TypeError, match="must be bytes, got str"):
        await run_asgi(WSGIMiddleware(app))


async def test_body_before_start_response_is_an_error() -> None:
    def app(environ: Any, start_response: Any) -> list[bytes]:
        return [b"no headers"]

    with pytest.raises(RuntimeError, match="before calling start_response"):
        await run_asgi(WSGIMiddleware(app))


async def test_file_wrapper_streams_and_closes_the_file() -> None:
    data = bytes(range(256)) * 1000
    files: list[io.BytesIO] = []

    def app(environ: Any, start_response: Any) -> Any:
        start_response("200 OK", [("Content-Length", str(len(data)))])
        files.append(io.BytesIO(data))
        return environ["wsgi.file_wrapper"](files[0], 65536)

    recorded = await run_asgi(WSGIMiddleware(app))
    assert recorded.body == data
    assert len(recorded.body_chunks) > 1
    assert files[0].closed


def test_file_wrapper_without_close() -> None:
    class Reader:
        def __init__(self) -> None:
            self.parts = [b"a", b"b"]

        def read(self, size: int) -> bytes:
            return self.parts.pop(0) if self.parts else b""

    wrapper = FileWrapper(Reader())  # type: ignore[arg-type]
    assert list(wrapper) == [b"a", b"b"]
    wrapper.close()


async def test_close_called_when_the_app_raises_mid_iteration() -> None:
    closed = threading.Event()

    class Body:
        def __iter__(self) -> Iterator[bytes]:
            yield b"a"
            raise ZeroDivisionError

        def close(self) -> None:
            closed.set()

    def app(environ: Any, start_response: Any) -> Body:
        start_response("200 OK", [])
        return Body()

    with pytest.raises(ZeroDivisionError):
        await run_asgi(WSGIMiddleware(app), validate=False)
    assert closed.is_set()


async def test_app_error_before_start_propagates() -> None:
    def app(environ: Any, start_response: Any) -> list[bytes]:
        raise LookupError("broken view")

    with pytest.raises(LookupError, match="broken view"):
        await run_asgi(WSGIMiddleware(app))


async def test_request_body_reads() -> None:
    seen: dict[str, Any] = {}

    def app(environ: Any, start_response: Any) -> list[bytes]:
        stream = environ["wsgi.input"]
        seen["line"] = stream.readline()
        seen["limited"] = stream.readline(3)
        seen["two"] = stream.read(2)
        seen["zero"] = stream.read(0)
        seen["lines"] = stream.readlines()
        seen["rest"] = stream.read()
        seen["none"] = stream.read(None)
        start_response("200 OK", [])
        return []

    chunks = [b"first line\nsec", b"ond line\nthird\nfour", b"th\n"]
    await run_asgi(WSGIMiddleware(app), http_scope("POST"), body=chunks)
    assert seen == {
        "line": b"first line\n",
        "limited": b"sec",
        "two": b"on",
        "zero": b"",
        "lines": [b"d line\n", b"third\n", b"fourth\n"],
        "rest": b"",
        "none": b"",
    }


async def test_body_larger_than_prefetch_streams_through_a_small_buffer() -> None:
    chunks = [bytes([i]) * 1000 for i in range(50)]
    seen: dict[str, Any] = {}

    def app(environ: Any, start_response: Any) -> list[bytes]:
        stream = environ["wsgi.input"]
        seen["head"] = stream.read(2500)
        seen["lines"] = stream.readlines(hint=1)
        seen["rest"] = stream.read()
        start_response("200 OK", [])
        return []

    await run_asgi(WSGIMiddleware(app, prefetch_size=1024), http_scope("POST"), body=chunks)
    whole = b"".join(chunks)
    assert seen["head"] == whole[:2500]
    assert b"".join(seen["lines"]) + seen["rest"] == whole[2500:]


async def test_iterating_wsgi_input() -> None:
    lines: list[bytes] = []

    def app(environ: Any, start_response: Any) -> list[bytes]:
        lines.extend(environ["wsgi.input"])
        start_response("200 OK", [])
        return []

    await run_asgi(
        WSGIMiddleware(app, prefetch_size=4), http_scope("POST"), body=[b"a\nb", b"c\n", b"d"]
    )
    assert lines == [b"a\n", b"bc\n", b"d"]


def scripted(messages: list[dict[str, Any]], then: anyio.Event | None = None) -> Any:
    async def receive() -> dict[str, Any]:
        if messages:
            return messages.pop(0)
        if then is not None:
            await then.wait()
        return {"type": "http.disconnect"}

    return receive


async def test_truncated_body_raises_in_the_app() -> None:
    errors: list[BaseException] = []

    def app(environ: Any, start_response: Any) -> list[bytes]:
        try:
            environ["wsgi.input"].read()
        except OSError as exc:
            errors.append(exc)
            raise
        start_response("200 OK", [])
        return []

    receive = scripted([{"type": "http.request", "body": b"x" * 100, "more_body": True}])
    scope = http_scope("POST", headers={"content-length": "1000"})
    await run_asgi(WSGIMiddleware(app, prefetch_size=50), scope, receive=receive)
    assert len(errors) == 1
    assert isinstance(errors[0], ClientDisconnected)


async def test_truncated_body_readline_raises_too() -> None:
    errors: list[BaseException] = []

    def app(environ: Any, start_response: Any) -> list[bytes]:
        try:
            environ["wsgi.input"].readline()
        except ClientDisconnected as exc:
            errors.append(exc)
        start_response("200 OK", [])
        return [b"unseen"]

    receive = scripted([{"type": "http.request", "body": b"no newline", "more_body": True}])
    await run_asgi(WSGIMiddleware(app, prefetch_size=4), http_scope("POST"), receive=receive)
    assert len(errors) == 1


async def test_client_gone_before_the_body_arrived_never_calls_the_app() -> None:
    calls: list[int] = []

    def app(environ: Any, start_response: Any) -> list[bytes]:
        calls.append(1)
        return []

    receive = scripted([{"type": "http.request", "body": b"x", "more_body": True}])
    recorded = await run_asgi(WSGIMiddleware(app), http_scope("POST"), receive=receive)
    assert calls == []
    assert recorded.messages == []


async def test_non_http_scopes() -> None:
    middleware = WSGIMiddleware(hello)
    recorded = await run_asgi(middleware, websocket_scope())
    assert recorded.messages == [{"type": "websocket.close", "code": 1000}]
    sent: list[dict[str, Any]] = []

    async def send(message: Any) -> None:
        sent.append(message)

    await middleware({"type": "unknown"}, scripted([]), send)
    assert sent == []


async def test_lifespan_answers_and_shuts_its_own_pool_down() -> None:
    middleware = WSGIMiddleware(hello, workers=1)
    sent: list[dict[str, Any]] = []

    async def send(message: Any) -> None:
        sent.append(message)

    receive = scripted(
        [{"type": "lifespan.startup"}, {"type": "other"}, {"type": "lifespan.shutdown"}]
    )
    await middleware({"type": "lifespan"}, receive, send)
    assert [m["type"] for m in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    recorded = await run_asgi(middleware)
    assert recorded.status == 503


async def test_lifespan_leaves_a_given_executor_running() -> None:
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as executor:
        middleware = WSGIMiddleware(hello, executor=executor)
        receive = scripted([{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}])

        async def send(message: Any) -> None:
            return None

        await middleware({"type": "lifespan"}, receive, send)
        assert (await run_asgi(middleware)).body == b"Hello, world"
