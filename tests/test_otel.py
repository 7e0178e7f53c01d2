"""What OpenTelemetryMiddleware adds to Starlette's: metrics, WebSockets, query redaction, the
first-byte event, the trace id for request ids and logs, and a free no-op path."""

from __future__ import annotations

import importlib.util
import json
import logging
import sys
from types import SimpleNamespace
from typing import Any

import anyio
import pytest
from hypothesis import given
from hypothesis import strategies as st
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import StatusCode

import middlewares.otel as otel_module
from middlewares._core.outcome import set_outcome
from middlewares._core.respond import send_response
from middlewares._types import ASGIApp, Receive, Scope, Send
from middlewares.access_log import AccessLogMiddleware
from middlewares.body_limit import BodyLimitMiddleware
from middlewares.otel import (
    OpenTelemetryMiddleware,
    TraceIDFilter,
    http_route,
    trace_request_id,
)
from middlewares.request_id import RequestIDMiddleware, get_request_id
from middlewares.testing import http_scope, run_asgi, websocket_scope
from middlewares.timeout import TimeoutMiddleware

from .logs import collected
from .otel_support import Telemetry, client, starlette_app

pytestmark = pytest.mark.anyio


def instrumented(telemetry: Telemetry, app: Any = None, **options: Any) -> OpenTelemetryMiddleware:
    return OpenTelemetryMiddleware(
        starlette_app() if app is None else app,
        tracer_provider=telemetry.tracer_provider,
        meter_provider=telemetry.meter_provider,
        **options,
    )


async def test_duration_histogram_and_active_requests() -> None:
    telemetry = Telemetry()
    async with client(instrumented(telemetry)) as http:
        await http.get("/users/1")
        await http.get("/users/2")
        await http.get("/boom")
        await http.request("BREW", "/")
    durations = {
        tuple(sorted(point.attributes.items())): point.count
        for point in telemetry.points("http.server.request.duration")
    }
    ok = {
        "http.request.method": "GET",
        "url.scheme": "http",
        "http.response.status_code": 200,
        "http.route": "/users/{user_id}",
        "network.protocol.version": "1.1",
    }
    assert durations[tuple(sorted(ok.items()))] == 2
    failed = {**ok, "http.route": "/boom", "http.response.status_code": 500}
    assert durations[tuple(sorted({**failed, "error.type": "ValueError"}.items()))] == 1
    assert any(dict(key)["http.request.method"] == "_OTHER" for key in durations)  # bounded
    (active, *_) = [
        p
        for p in telemetry.points("http.server.active_requests")
        if p.attributes["http.request.method"] == "GET"
    ]
    assert active.value == 0
    assert all(0 < point.sum < 10 for point in telemetry.points("http.server.request.duration"))


async def test_a_streamed_response_is_still_one_span() -> None:
    telemetry = Telemetry()
    async with client(instrumented(telemetry)) as http:
        response = await http.get("/stream")
    assert response.text.count("chunk") == 5
    assert [span.name for span in telemetry.spans] == ["GET /stream"]


async def test_first_byte_event_is_opt_in() -> None:
    telemetry = Telemetry()
    async with client(instrumented(telemetry, first_byte_event=True)) as http:
        await http.get("/stream")
    async with client(instrumented(telemetry)) as http:
        await http.get("/stream")
    first, second = telemetry.spans
    assert [event.name for event in first.events] == ["http.response.first_byte"]
    assert list(second.events) == []


async def test_one_span_per_websocket_connection() -> None:
    telemetry = Telemetry()
    app = instrumented(telemetry)
    recorded = await run_asgi(
        app,
        websocket_scope("/ws"),
        websocket_messages=[{"type": "websocket.receive", "text": "hi"}],
    )
    assert recorded.of_type("websocket.send")[0]["text"] == "hi"
    (span,) = telemetry.spans
    assert span.name == "GET /ws"
    assert span.attributes is not None
    assert (span.attributes["url.scheme"], span.attributes["http.response.status_code"]) == (
        "ws",
        101,
    )


@pytest.mark.parametrize(
    ("reply", "status"),
    [
        pytest.param({"type": "websocket.close", "code": 1008}, 403, id="closed before accept"),
        pytest.param(
            {"type": "websocket.http.response.start", "status": 401, "headers": []},
            401,
            id="denial response",
        ),
    ],
)
async def test_refused_websocket_handshake_status(reply: dict[str, Any], status: int) -> None:
    telemetry = Telemetry()

    async def refuse(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send(reply)
        if reply["type"] == "websocket.http.response.start":
            await send({"type": "websocket.http.response.body", "body": b""})

    await run_asgi(instrumented(telemetry, refuse), websocket_scope(), validate=False)
    (span,) = telemetry.spans
    assert span.attributes is not None
    assert span.attributes["http.response.status_code"] == status


async def test_secret_query_parameters_are_redacted_unlike_starlette() -> None:
    telemetry = Telemetry()
    async with client(instrumented(telemetry)) as http:
        await http.get("/", params={"page": "2", "access_token": "s3cr3t"})
    (span,) = telemetry.spans
    assert span.attributes is not None
    assert span.attributes["url.query"] == "page=2&access_token=REDACTED"


async def test_a_query_that_is_not_utf8_is_served_and_percent_encoded() -> None:
    # Starlette's middleware decodes the query as UTF-8 and answers 500 to such a request.
    telemetry = Telemetry()
    recorded = await run_asgi(instrumented(telemetry), http_scope(query_string=b"q=\xff\xfe"))
    assert recorded.status == 200
    assert telemetry.spans[0].attributes is not None
    assert telemetry.spans[0].attributes["url.query"] == "q=%FF%FE"


async def test_metrics_without_tracing() -> None:
    telemetry = Telemetry()
    app = OpenTelemetryMiddleware(
        starlette_app(),
        tracer_provider=trace.NoOpTracerProvider(),
        meter_provider=telemetry.meter_provider,
    )
    async with client(app) as http:
        await http.get("/")
    assert telemetry.spans == ()
    assert telemetry.points("http.server.request.duration")[0].count == 1


async def test_with_nothing_configured_the_app_gets_the_servers_callables() -> None:
    seen: list[Send] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(send)
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    sent: list[Any] = []

    async def send(message: Any) -> None:
        sent.append(message)

    async def receive() -> Any:
        return {"type": "http.request", "body": b""}

    scope = http_scope()
    await OpenTelemetryMiddleware(app)(scope, receive, send)
    assert seen == [send]
    assert "middlewares.trace_id" not in scope


async def test_trace_id_reaches_the_access_log_and_the_request_id() -> None:
    telemetry = Telemetry()
    log = logging.getLogger("tests.otel.access")
    log.setLevel(logging.INFO)
    log.propagate = False
    seen: list[str | None] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(get_request_id())
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    stack = AccessLogMiddleware(
        instrumented(telemetry, RequestIDMiddleware(app, generator=trace_request_id)), logger=log
    )
    with collected(log) as records:
        recorded = await run_asgi(stack)
    (span,) = telemetry.spans
    trace_id = format(span.context.trace_id, "032x")
    line = json.loads(records[0].getMessage())
    assert line["trace_id"] == line["request_id"] == seen[0] == trace_id
    assert recorded.header("x-request-id") == trace_id


def test_trace_request_id_outside_a_span_is_random() -> None:
    first, second = trace_request_id(), trace_request_id()
    assert len(first) == 32
    assert first != second


def test_log_records_carry_the_trace_id_span_id_and_request_id() -> None:
    provider = TracerProvider()
    handler_filter = TraceIDFilter()
    outside = logging.makeLogRecord({"msg": "outside"})
    handler_filter.filter(outside)
    assert (outside.trace_id, outside.span_id, outside.request_id) == ("-", "-", "-")  # type: ignore[attr-defined]
    with provider.get_tracer("t").start_as_current_span("work") as span:
        inside = logging.makeLogRecord({"msg": "inside"})
        assert handler_filter.filter(inside)
    assert inside.trace_id == format(span.get_span_context().trace_id, "032x")  # type: ignore[attr-defined]
    assert inside.span_id == format(span.get_span_context().span_id, "016x")  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("scope", "route"),
    [
        pytest.param({"route": "/plain/{id}"}, "/plain/{id}", id="a string route"),
        pytest.param(
            {"path_template": "/items/{item_id:int}"},
            "/items/{item_id:int}",
            id="Litestar's path template",
        ),
        pytest.param({}, None, id="no router"),
    ],
)
def test_http_route_from_other_frameworks(scope: Scope, route: str | None) -> None:
    assert http_route(scope) == route


@pytest.mark.parametrize(
    ("host", "server", "expected"),
    [
        pytest.param("Example.com:8443", ("10.0.0.1", 80), ("example.com", 8443), id="host:port"),
        pytest.param("[::1]:9000", None, ("::1", 9000), id="IPv6 literal"),
        pytest.param("[::1]", ("::1", 80), ("::1", 80), id="IPv6 without port"),
        pytest.param(None, ("10.0.0.1", 8000), ("10.0.0.1", 8000), id="no Host: the server"),
        pytest.param(None, None, (None, None), id="nothing known"),
        pytest.param("a.test:\u00b2", ("a.test", 80), ("a.test", 80), id="superscript port digit"),
    ],
)
def test_server_address_and_port(
    host: str | None, server: Any, expected: tuple[str | None, int | None]
) -> None:
    scope = http_scope(headers={"host": host} if host else {}, server=server)
    host_value = None if host is None else host.encode("latin-1")
    assert otel_module._server(host_value, scope["server"]) == expected


@pytest.mark.parametrize(
    ("host", "server", "scheme", "url"),
    [
        pytest.param("a.test", None, "http", "http://a.test/p?q=1", id="from Host"),
        pytest.param(None, ("a.test", 443), "https", "https://a.test/p?q=1", id="default port"),
        pytest.param(None, ("a.test", 8080), "http", "http://a.test:8080/p?q=1", id="own port"),
        pytest.param(None, None, "http", "/p?q=1", id="no host at all"),
    ],
)
def test_full_url_for_exclusions(host: str | None, server: Any, scheme: str, url: str) -> None:
    scope = http_scope(
        path="/p",
        headers={"host": host} if host else {},
        server=server,
        scheme=scheme,
        query_string=b"q=1",
    )
    assert otel_module._full_url(scope) == url


def test_bad_excluded_url_names_the_pattern() -> None:
    with pytest.raises(ValueError, match=r"excluded_urls must hold regular expressions.*'\('"):
        OpenTelemetryMiddleware(starlette_app(), excluded_urls=["("])


def test_missing_extra_fails_at_construction(monkeypatch: pytest.MonkeyPatch) -> None:
    # The module as it loads where opentelemetry is not installed: it imports, and building the
    # middleware names the extra. A fresh module object, so the real one is left alone.
    monkeypatch.setitem(sys.modules, "opentelemetry", None)
    spec = importlib.util.find_spec("middlewares.otel")
    assert spec is not None
    assert spec.loader is not None
    without = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(without)
    with pytest.raises(ImportError, match=r"pip install 'middlewares\[otel\]'"):
        without.OpenTelemetryMiddleware(starlette_app())


async def test_an_error_status_without_exception_sets_error_status() -> None:
    telemetry = Telemetry()
    async with client(instrumented(telemetry)) as http:
        await http.get("/unavailable")
    (span,) = telemetry.spans
    assert span.status.status_code == StatusCode.ERROR
    assert span.attributes is not None
    assert span.attributes["error.type"] == "503"


async def test_a_bare_scope_and_an_app_that_never_answers() -> None:
    telemetry = Telemetry()

    async def silent(scope: Scope, receive: Receive, send: Send) -> None:
        return None

    scope: Scope = {"type": "http", "method": "get", "path": "/x", "headers": []}
    await instrumented(telemetry, silent)(scope, None, None)  # type: ignore[arg-type]
    (span,) = telemetry.spans
    assert span.name == "GET"
    assert dict(span.attributes or {}) == {
        "http.request.method": "GET",
        "http.request.method_original": "get",
        "url.path": "/x",
        "url.scheme": "http",
    }
    (point,) = telemetry.points("http.server.request.duration")
    assert dict(point.attributes) == {"http.request.method": "GET", "url.scheme": "http"}


async def test_an_app_raising_before_its_response() -> None:
    telemetry = Telemetry()

    async def broken(scope: Scope, receive: Receive, send: Send) -> None:
        raise KeyError("missing")

    with pytest.raises(KeyError):
        await run_asgi(instrumented(telemetry, broken))
    (span,) = telemetry.spans
    assert span.attributes is not None
    assert span.attributes["error.type"] == "KeyError"
    assert "http.response.status_code" not in span.attributes


async def test_a_provider_making_invalid_spans_leaves_no_trace_id() -> None:
    class Invalid(trace.TracerProvider):
        def get_tracer(self, *args: Any, **kwargs: Any) -> trace.Tracer:
            return trace.NoOpTracer()

    scope = http_scope()
    app = OpenTelemetryMiddleware(starlette_app(), tracer_provider=Invalid())
    recorded = await run_asgi(app, scope)
    assert recorded.status == 200
    assert "middlewares.trace_id" not in scope


def test_the_header_getter_reads_raw_headers() -> None:
    headers = [(b"accept", b"*/*"), (b"baggage", b"a=1"), (b"baggage", b"b=2")]
    assert otel_module._GETTER.get(headers, "Baggage") == ["a=1", "b=2"]
    assert otel_module._GETTER.get(headers, "traceparent") is None
    assert otel_module._GETTER.keys(headers) == ["accept", "baggage", "baggage"]


def test_host_is_found_among_other_headers() -> None:
    headers = [("user-agent", "a"), ("host", "b.test"), ("host", "c.test"), ("user-agent", "b")]
    scope = http_scope(headers=headers, server=None)
    attributes = otel_module._attributes(scope, "GET", "GET")
    assert attributes["server.address"] == "b.test"
    assert "server.port" not in attributes
    assert attributes["user_agent.original"] == "a"
    assert otel_module._full_url(scope) == "http://b.test/"


def test_the_package_imports_opentelemetry_only_when_asked() -> None:
    import middlewares

    assert middlewares.OpenTelemetryMiddleware is OpenTelemetryMiddleware
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        middlewares.Nope  # type: ignore[attr-defined]  # noqa: B018


@given(host=st.binary(max_size=40), query=st.binary(max_size=40))
def test_any_host_and_query_give_attributes_without_raising(host: bytes, query: bytes) -> None:
    scope = http_scope(headers=[(b"host", host)], query_string=query)
    attributes = otel_module._attributes(scope, "GET", "GET")
    assert attributes["url.path"] == "/"
    assert isinstance(otel_module._full_url(scope), str)


async def test_a_request_cancelled_mid_response_is_an_error() -> None:
    # As a server cancels the request when its client disconnects: a BaseException.
    telemetry = Telemetry()

    async def interrupted(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await anyio.sleep(10)

    with anyio.move_on_after(0.05):
        await run_asgi(instrumented(telemetry, interrupted), validate=False)
    (span,) = telemetry.spans
    assert span.status.status_code == StatusCode.ERROR
    assert [event.name for event in span.events] == ["exception"]
    assert span.attributes is not None
    assert span.attributes["error.type"] in ("CancelledError", "Cancelled")  # asyncio, trio
    assert span.attributes["http.response.status_code"] == 200
    assert trace.get_current_span() is trace.INVALID_SPAN  # the context was restored


async def stall_after_start(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"part", "more_body": True})
    await anyio.sleep(10)


async def stall_before_start(scope: Scope, receive: Receive, send: Send) -> None:
    await anyio.sleep(10)


async def read_then_answer(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"part", "more_body": True})
    while (await receive()).get("more_body"):
        pass
    await send({"type": "http.response.body", "body": b"rest"})


async def rate_limited(scope: Scope, receive: Receive, send: Send) -> None:
    set_outcome(scope, "limited")
    await send_response(send, 429, [], b"slow down")


async def refused_too_large(scope: Scope, receive: Receive, send: Send) -> None:
    set_outcome(scope, "too_large")
    await send_response(send, 413, [], b"too large")


async def left_while_read(scope: Scope, receive: Receive, send: Send) -> None:
    set_outcome(scope, "disconnect")  # as CSRF records a client gone mid-form, no response


@pytest.mark.parametrize(
    ("app", "body", "status", "error_type"),
    [
        pytest.param(
            TimeoutMiddleware(stall_after_start, idle_timeout=0.05),
            b"",
            200,
            "timeout",
            id="a timeout cut the response after it started",
        ),
        pytest.param(
            TimeoutMiddleware(stall_before_start, timeout=0.05),
            b"",
            504,
            "504",
            id="a timeout answered 504 before the start",
        ),
        pytest.param(
            BodyLimitMiddleware(read_then_answer, max_body_size=4),
            [b"12", b"345678"],
            200,
            "too_large",
            id="a body over the limit after the response started",
        ),
        pytest.param(
            BodyLimitMiddleware(read_then_answer, max_body_size=4),
            [b"12", b"34"],
            200,
            None,
            id="a body within the limit",
        ),
        pytest.param(
            refused_too_large, b"", 413, None, id="a 413 before the start is a client error"
        ),
        pytest.param(rate_limited, b"", 429, None, id="a 429 is an answer, not an error"),
        pytest.param(left_while_read, b"", None, "disconnect", id="the client left, no response"),
    ],
)
async def test_an_outcome_recorded_by_an_inner_layer_reaches_the_span_and_metric(
    app: ASGIApp, body: bytes | list[bytes], status: int | None, error_type: str | None
) -> None:
    telemetry = Telemetry()
    await run_asgi(instrumented(telemetry, app), body=body, validate=False)
    (span,) = telemetry.spans
    attributes = dict(span.attributes or {})
    assert attributes.get("http.response.status_code") == status
    assert attributes.get("error.type") == error_type
    failed = StatusCode.ERROR if error_type else StatusCode.UNSET
    assert span.status.status_code == failed
    (point,) = telemetry.points("http.server.request.duration")
    assert point.attributes.get("error.type") == error_type


async def test_requests_in_flight_are_counted_across_middlewares_on_one_provider() -> None:
    telemetry = Telemetry()
    seen: list[int] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        (point,) = telemetry.points("http.server.active_requests")
        seen.append(point.value)
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    first = instrumented(telemetry, app)
    second = instrumented(telemetry, app)
    await run_asgi(first)
    await run_asgi(second)
    assert seen == [1, 1]
    assert telemetry.points("http.server.active_requests")[0].value == 0


async def test_a_global_provider_set_after_the_app_was_built_is_used(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    telemetry = Telemetry()
    app = OpenTelemetryMiddleware(starlette_app())
    async with client(app) as http:
        await http.get("/")
    assert telemetry.spans == ()
    # What trace.set_tracer_provider() does, undone after the test (it can be set only once).
    monkeypatch.setattr(trace, "_TRACER_PROVIDER", telemetry.tracer_provider)
    async with client(app) as http:
        await http.get("/users/3")
    assert [span.name for span in telemetry.spans] == ["GET /users/{user_id}"]


@pytest.mark.parametrize(
    ("module", "from_environment"),
    [
        pytest.param(trace, True, id="a provider named in OTEL_PYTHON_TRACER_PROVIDER"),
        pytest.param(SimpleNamespace(), False, id="an API without the module global"),
    ],
)
def test_the_public_lookup_when_the_global_says_nothing(
    monkeypatch: pytest.MonkeyPatch, module: Any, from_environment: bool
) -> None:
    monkeypatch.setattr(otel_module, "_PROVIDERS_FROM_ENVIRONMENT", from_environment)
    provider = otel_module._global(module, "_TRACER_PROVIDER")
    assert type(provider) in otel_module._NO_TRACING | otel_module._NO_METRICS
    assert provider is not None
