"""Request timings into Prometheus histograms, labelled by route template so that the number
of series stays bounded: ``/users/1`` and ``/users/2`` are both ``/users/{user_id}``, and every
path no route matched (scanners, typos) shares the ``__unmatched__`` label.

Run it with ``uvicorn examples.timing_prometheus:app``, make a few requests, then read
http://127.0.0.1:8000/metrics.
"""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Histogram, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from middlewares.timing import RequestTiming, TimingMiddleware, timing

REGISTRY = CollectorRegistry()
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
LABELS = ("method", "route", "status")
REQUEST_SECONDS = Histogram(
    "http_request_duration_seconds",
    "Time to the last byte of the response.",
    LABELS,
    registry=REGISTRY,
)
FIRST_BYTE_SECONDS = Histogram(
    "http_time_to_first_byte_seconds",
    "Time until the response headers were sent.",
    LABELS,
    registry=REGISTRY,
)
STEP_SECONDS = Histogram(
    "app_step_duration_seconds",
    "Steps the application timed with timing() (names come from code, so they are bounded).",
    ("route", "step"),
    registry=REGISTRY,
)


def observe(record: RequestTiming) -> None:
    """The hook: called once per finished request, errors and disconnects (499) included."""
    route = record.template or "__unmatched__"
    method = record.method if record.method in METHODS else "OTHER"  # methods are client input
    labels = (method, route, str(record.status))
    REQUEST_SECONDS.labels(*labels).observe(record.ttlb or record.duration)
    if record.ttfb is not None:
        FIRST_BYTE_SECONDS.labels(*labels).observe(record.ttfb)
    for metric in record.metrics:
        if metric.dur is not None:
            STEP_SECONDS.labels(route, metric.name).observe(metric.dur / 1000)


async def home(request: Request) -> PlainTextResponse:
    return PlainTextResponse("try /users/1, /users/2, /nowhere, then /metrics")


async def user(request: Request) -> PlainTextResponse:
    with timing("db"):
        name = f"user {request.path_params['user_id']}"
    return PlainTextResponse(name)


async def metrics(request: Request) -> Response:
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)


app = TimingMiddleware(
    Starlette(
        routes=[
            Route("/", home),
            Route("/users/{user_id:int}", user),
            Route("/metrics", metrics),
        ]
    ),
    on_timing=observe,
    expose="never",  # metrics only: no internal timings in responses
    exclude_paths=["/metrics"],
)
