"""OpenTelemetry for a Starlette app: one span per request printed by the SDK's console
exporter, the request id taken from the trace id, and both ids on every log line.

Needs ``pip install 'middlewares[otel]' opentelemetry-sdk``. Run it with
``uvicorn examples.otel_console:app --no-access-log``, then
``curl -H 'traceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' http://127.0.0.1:8000/items/3``:
the span ``GET /items/{item_id}`` is a child of that trace, the response's ``X-Request-ID``
is ``0af7651916cd43dd8448eb211c80319c``, and the app's and the access log's lines carry it.
"""

from __future__ import annotations

import logging

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SimpleSpanProcessor
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from middlewares import (
    AccessLogMiddleware,
    OpenTelemetryMiddleware,
    RequestIDMiddleware,
    TraceIDFilter,
    trace_request_id,
)

tracer_provider = TracerProvider(resource=Resource.create({"service.name": "example"}))
# In production: batch to a collector, as examples/otel_otlp.py does.
tracer_provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter()))

log = logging.getLogger("example")
if not log.handlers:
    handler = logging.StreamHandler()
    handler.addFilter(TraceIDFilter())  # record.trace_id, span_id, request_id
    handler.setFormatter(logging.Formatter("%(levelname)s trace=%(trace_id)s %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False


async def home(request: Request) -> PlainTextResponse:
    return PlainTextResponse("hello")


async def item(request: Request) -> PlainTextResponse:
    log.info("loading item %s", request.path_params["item_id"])
    return PlainTextResponse(f"item {request.path_params['item_id']}")


app = Starlette(
    routes=[Route("/", home), Route("/items/{item_id:int}", item)],
    middleware=[
        Middleware(AccessLogMiddleware, logger=log),  # its line carries trace_id and request_id
        Middleware(OpenTelemetryMiddleware, tracer_provider=tracer_provider),
        Middleware(RequestIDMiddleware, generator=trace_request_id),  # inside the span
    ],
)
