"""OpenTelemetryMiddleware is a drop-in for Starlette 1.10's: the same arguments and, request
for request, the same span (name, kind, attributes, status, exception events)."""

from __future__ import annotations

from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind, StatusCode
from starlette.middleware.opentelemetry import OpenTelemetryMiddleware as StarletteOTel

from middlewares.otel import OpenTelemetryMiddleware

from .otel_support import Telemetry, client, starlette_app

pytestmark = pytest.mark.anyio

CLASSES = [
    pytest.param(OpenTelemetryMiddleware, id="middlewares"),
    pytest.param(StarletteOTel, id="starlette"),
]


def summary(span: ReadableSpan) -> dict[str, Any]:
    return {
        "name": span.name,
        "kind": span.kind,
        "attributes": dict(span.attributes or {}),
        "status": span.status.status_code,
        "events": [event.name for event in span.events],
        "parent": span.parent.span_id if span.parent else None,
    }


async def traced(cls: Any, method: str, path: str, **options: Any) -> list[dict[str, Any]]:
    telemetry = Telemetry()
    app = cls(starlette_app(), tracer_provider=telemetry.tracer_provider, **options)
    async with client(app) as http:
        await http.request(method, path, headers={"user-agent": "probe/1"})
    return [summary(span) for span in telemetry.spans]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        pytest.param("GET", "/", id="root"),
        pytest.param("GET", "/users/7?page=2&sort=name", id="route template with a query"),
        pytest.param("get", "/users/7", id="lower-case method"),
        pytest.param("POST", "/nowhere", id="no route matched"),
        pytest.param("GET", "/boom", id="the app raises"),
        pytest.param("GET", "/unavailable", id="a 503 response"),
        pytest.param("GET", "/static/app.js", id="a mounted app"),
        pytest.param("GET", "/stream", id="a streamed response"),
    ],
)
async def test_same_span_as_starlette(method: str, path: str) -> None:
    ours = await traced(OpenTelemetryMiddleware, method, path)
    theirs = await traced(StarletteOTel, method, path)
    assert ours == theirs
    assert len(ours) == 1


@pytest.mark.parametrize("cls", CLASSES)
async def test_span_name_uses_the_route_template_never_the_raw_path(cls: Any) -> None:
    (span,) = await traced(cls, "GET", "/users/7?page=2")
    assert span["name"] == "GET /users/{user_id}"
    assert span["kind"] == SpanKind.SERVER
    assert span["attributes"] == {
        "http.request.method": "GET",
        "url.path": "/users/7",
        "url.scheme": "http",
        "url.query": "page=2",
        "server.address": "api.example.com",
        "network.protocol.version": "1.1",
        "client.address": "203.0.113.7",
        "user_agent.original": "probe/1",
        "http.response.status_code": 200,
        "http.route": "/users/{user_id}",
    }


@pytest.mark.parametrize("cls", CLASSES)
async def test_unmatched_request_is_named_by_method_only(cls: Any) -> None:
    (span,) = await traced(cls, "GET", "/nowhere/secret-token-123")
    assert span["name"] == "GET"
    assert "http.route" not in span["attributes"]


@pytest.mark.parametrize("cls", CLASSES)
async def test_an_exception_is_recorded_with_its_type(cls: Any) -> None:
    (span,) = await traced(cls, "GET", "/boom")
    assert span["attributes"]["error.type"] == "ValueError"
    assert span["status"] == StatusCode.ERROR
    assert span["events"] == ["exception"]


@pytest.mark.parametrize("cls", CLASSES)
@pytest.mark.parametrize(
    "excluded",
    [
        pytest.param("/static,healthz", id="comma-separated string"),
        pytest.param([r"/static/.*\.js$"], id="sequence of regexes"),
        pytest.param(["api.example.com/static"], id="matched against the full URL"),
    ],
)
async def test_excluded_urls_are_not_traced(cls: Any, excluded: Any) -> None:
    assert await traced(cls, "GET", "/static/app.js", excluded_urls=excluded) == []
    assert len(await traced(cls, "GET", "/", excluded_urls=excluded)) == 1


@pytest.mark.parametrize("cls", CLASSES)
async def test_the_no_op_provider_traces_nothing(cls: Any) -> None:
    app = cls(starlette_app(), tracer_provider=trace.NoOpTracerProvider())
    async with client(app) as http:
        response = await http.get("/")
    assert response.text == "home"


@pytest.mark.parametrize("cls", CLASSES)
async def test_incoming_traceparent_is_the_parent(cls: Any) -> None:
    telemetry = Telemetry()
    app = cls(starlette_app(), tracer_provider=telemetry.tracer_provider)
    traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    async with client(app) as http:
        await http.get("/", headers={"traceparent": traceparent})
    (span,) = telemetry.spans
    assert format(span.context.trace_id, "032x") == "0af7651916cd43dd8448eb211c80319c"
    assert span.parent is not None
    assert format(span.parent.span_id, "016x") == "b7ad6b7169203331"
    assert span.parent.is_remote


@pytest.mark.parametrize("cls", CLASSES)
async def test_nested_middleware_makes_one_span(cls: Any) -> None:
    telemetry = Telemetry()
    inner = cls(starlette_app(), tracer_provider=telemetry.tracer_provider)
    app = cls(inner, tracer_provider=telemetry.tracer_provider)
    async with client(app) as http:
        await http.get("/")
    assert len(telemetry.spans) == 1
