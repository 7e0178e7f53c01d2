"""Timing and request ids: TimingMiddleware beside timing-asgi, RequestIDMiddleware beside
asgi-correlation-id, both over the pass-through floor, on the same small response."""

from __future__ import annotations

from asgi_correlation_id import CorrelationIdMiddleware
from timing_asgi import TimingClient
from timing_asgi import TimingMiddleware as TimingAsgiMiddleware

from middlewares._types import Message
from middlewares.request_id import RequestIDMiddleware
from middlewares.testing import http_scope
from middlewares.timing import RequestTiming, TimingMiddleware

from .harness import Case, PassThrough, respond_with

FLOOR = "pass-through (floor)"


class NoOpClient(TimingClient):
    """timing-asgi's client interface, discarding every sample."""

    def timing(self, metric_name: str, timing: float, tags: list[str]) -> None:
        return None


def no_op_hook(record: RequestTiming) -> None:
    return None


def _check_timing(label: str, messages: list[Message]) -> None:
    if label != "middlewares":
        return
    headers = dict(messages[0]["headers"])
    if not headers.get(b"server-timing", b"").startswith(b"app;dur="):
        raise AssertionError(f"{label} sent no Server-Timing: {messages[0]}")


def _check_request_id(label: str, messages: list[Message]) -> None:
    if label == FLOOR:
        return
    headers = dict(messages[0]["headers"])
    if len(headers.get(b"x-request-id", b"")) != 32:
        raise AssertionError(f"{label} sent no request id: {messages[0]}")


def cases() -> list[Case]:
    app = respond_with(b"ok", [(b"content-type", b"text/plain")])
    scope = http_scope(
        "GET",
        "/items",
        headers={"host": "api.example.com", "accept": "*/*", "user-agent": "bench/1.0"},
    )
    return [
        Case(
            "timing",
            "GET, header + hook (no-op sink)",
            {
                "middlewares": TimingMiddleware(app, on_timing=no_op_hook),
                "middlewares, header only": TimingMiddleware(app),
                FLOOR: PassThrough(app),
                "timing-asgi": TimingAsgiMiddleware(app, client=NoOpClient()),
            },
            scope=scope,
            baseline="timing-asgi",
            check=_check_timing,
        ),
        Case(
            "timing",
            "GET, new request id",
            {
                "middlewares": RequestIDMiddleware(app),
                FLOOR: PassThrough(app),
                "asgi-correlation-id": CorrelationIdMiddleware(app),
            },
            scope=scope,
            baseline=FLOOR,
            check=_check_request_id,
        ),
    ]
