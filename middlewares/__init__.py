"""Composable, pure-ASGI middleware."""

from typing import TYPE_CHECKING

from .access_log import AccessLogMiddleware
from .blocking import BlockingDetector
from .compose import Layer, compose
from .compression import CompressionMiddleware, GZipMiddleware, RequestDecompressionMiddleware
from .cors import CORSMiddleware
from .offload import OffloadMiddleware, process_pool, run_in_process, run_in_thread, thread_pool
from .request_id import RequestIDFilter, RequestIDMiddleware, get_request_id
from .sessions import (
    Session,
    SessionCookieTooLarge,
    SessionError,
    SessionMiddleware,
    SessionStore,
    SessionStoreError,
)
from .timing import RequestTiming, TimingMiddleware, add_timing, timing
from .wsgi import WSGIMiddleware

if TYPE_CHECKING:
    from .otel import OpenTelemetryMiddleware, TraceIDFilter, trace_request_id

__version__ = "0.1.0"

_OTEL = ("OpenTelemetryMiddleware", "TraceIDFilter", "trace_request_id")


def __getattr__(name: str) -> object:
    # OpenTelemetry is an optional extra, imported only when asked for.
    if name in _OTEL:
        from . import otel

        return getattr(otel, name)
    raise AttributeError(f"module 'middlewares' has no attribute {name!r}")


__all__ = [
    "AccessLogMiddleware",
    "BlockingDetector",
    "CORSMiddleware",
    "CompressionMiddleware",
    "GZipMiddleware",
    "Layer",
    "OffloadMiddleware",
    "OpenTelemetryMiddleware",
    "RequestDecompressionMiddleware",
    "RequestIDFilter",
    "RequestIDMiddleware",
    "RequestTiming",
    "Session",
    "SessionCookieTooLarge",
    "SessionError",
    "SessionMiddleware",
    "SessionStore",
    "SessionStoreError",
    "TimingMiddleware",
    "TraceIDFilter",
    "WSGIMiddleware",
    "__version__",
    "add_timing",
    "compose",
    "get_request_id",
    "process_pool",
    "run_in_process",
    "run_in_thread",
    "thread_pool",
    "timing",
    "trace_request_id",
]
