"""Observability: AccessLogMiddleware beside asgi-logger (both logging to a NullHandler), and
OpenTelemetryMiddleware beside opentelemetry-instrumentation-asgi and Starlette's, with the
SDK and an in-memory exporter, and with no provider configured; each over the pass-through
floor."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from asgi_logger import AccessLoggerMiddleware
from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware as InstrumentationASGI
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from starlette.middleware.opentelemetry import OpenTelemetryMiddleware as StarletteOTel

from middlewares._types import Message
from middlewares.access_log import AccessLogMiddleware
from middlewares.otel import OpenTelemetryMiddleware
from middlewares.testing import http_scope

from .harness import Case, PassThrough, respond_with

FLOOR = "pass-through (floor)"


class BoundedExporter(InMemorySpanExporter):
    """The SDK's in-memory exporter, emptied every 10,000 spans so a long run stays small."""

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        if len(self._finished_spans) > 10_000:
            self.clear()
        return super().export(spans)


def _null_logger(name: str) -> logging.Logger:
    logger = logging.getLogger(name)
    logger.handlers[:] = [logging.NullHandler()]
    logger.setLevel(logging.INFO)
    logger.propagate = False
    return logger


def _check_ok(label: str, messages: list[Message]) -> None:
    if messages[0]["status"] != 200:
        raise AssertionError(f"{label} did not answer 200: {messages[0]}")


def cases() -> list[Case]:
    app = respond_with(b"ok" * 50, [(b"content-type", b"text/plain")])
    scope = http_scope(
        "GET",
        "/items/7",
        query_string=b"page=2",
        headers={
            "host": "api.example.com",
            "accept": "*/*",
            "user-agent": "bench/1.0",
            "referer": "https://app.example.com/list",
        },
    )
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(BoundedExporter()))
    meter_provider = MeterProvider(metric_readers=[InMemoryMetricReader()])
    both = {"tracer_provider": tracer_provider, "meter_provider": meter_provider}
    return [
        Case(
            "observe",
            "access log, JSON line to a NullHandler",
            {
                "middlewares": AccessLogMiddleware(app, logger=_null_logger("bench.access")),
                "middlewares, combined": AccessLogMiddleware(
                    app, logger=_null_logger("bench.access"), format="combined"
                ),
                FLOOR: PassThrough(app),
                "asgi-logger": AccessLoggerMiddleware(app, logger=_null_logger("bench.asgi")),
            },
            scope=scope,
            baseline="asgi-logger",
            check=_check_ok,
        ),
        Case(
            "observe",
            "OpenTelemetry, SDK spans + metrics, in-memory",
            {
                "middlewares": OpenTelemetryMiddleware(app, **both),
                FLOOR: PassThrough(app),
                "opentelemetry-instrumentation-asgi": InstrumentationASGI(app, **both),
            },
            scope=scope,
            baseline="opentelemetry-instrumentation-asgi",
            check=_check_ok,
        ),
        Case(
            "observe",
            "OpenTelemetry, SDK spans, in-memory",
            {
                "middlewares": OpenTelemetryMiddleware(app, tracer_provider=tracer_provider),
                FLOOR: PassThrough(app),
                "starlette": StarletteOTel(app, tracer_provider=tracer_provider),
            },
            scope=scope,
            baseline="starlette",
            check=_check_ok,
        ),
        Case(
            "observe",
            "OpenTelemetry, no provider configured",
            {
                "middlewares": OpenTelemetryMiddleware(app),
                FLOOR: PassThrough(app),
                "starlette": StarletteOTel(app),
            },
            scope=scope,
            baseline=FLOOR,
            check=_check_ok,
        ),
    ]
