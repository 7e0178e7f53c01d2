"""OpenTelemetry to an OTLP collector over HTTP: spans batched in the background, the request
metrics exported every minute, and whatever is still batched sent when the server stops.

Needs ``pip install 'middlewares[otel]' opentelemetry-sdk opentelemetry-exporter-otlp-proto-http``.
The exporters read the standard variables: ``OTEL_EXPORTER_OTLP_ENDPOINT`` (the collector's
base URL, default ``http://localhost:4318``; they post to ``/v1/traces`` and ``/v1/metrics``),
``OTEL_SERVICE_NAME``, ``OTEL_EXPORTER_OTLP_HEADERS``. Run it with

    OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318 OTEL_SERVICE_NAME=shop \\
        uvicorn examples.otel_otlp:app --lifespan on

against a collector (``docker run -p 4318:4318 otel/opentelemetry-collector``, or Jaeger's
all-in-one image), then ``curl http://127.0.0.1:8000/items/3``: the collector gets the span
``GET /items/{item_id}`` and, within a minute or at shutdown, ``http.server.request.duration``.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from opentelemetry import metrics, trace
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from middlewares import OpenTelemetryMiddleware


@contextlib.asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    # Built at startup, in the process that serves: the exporters' background threads do not
    # survive the fork of `uvicorn --workers` or gunicorn. The middleware looks the global
    # providers up per request, so it needs no reference to them.
    tracer_provider = TracerProvider()  # service.name from OTEL_SERVICE_NAME
    tracer_provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    meter_provider = MeterProvider(
        metric_readers=[PeriodicExportingMetricReader(OTLPMetricExporter())]
    )
    trace.set_tracer_provider(tracer_provider)
    metrics.set_meter_provider(meter_provider)
    yield
    tracer_provider.shutdown()  # exports the spans still batched
    meter_provider.shutdown()  # and a last collection of the metrics


async def home(request: Request) -> PlainTextResponse:
    return PlainTextResponse("hello")


async def item(request: Request) -> PlainTextResponse:
    return PlainTextResponse(f"item {request.path_params['item_id']}")


async def health(request: Request) -> PlainTextResponse:
    return PlainTextResponse("ok")


app = Starlette(
    routes=[Route("/", home), Route("/items/{item_id:int}", item), Route("/health", health)],
    # Searched in the full URL: anchored, so that /healthcheck and /x?next=/health are traced.
    middleware=[Middleware(OpenTelemetryMiddleware, excluded_urls=r"^https?://[^/]+/health$")],
    lifespan=lifespan,
)
