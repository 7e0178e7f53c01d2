"""Composable, pure-ASGI middleware."""

from typing import TYPE_CHECKING

from .access_log import AccessLogMiddleware
from .blocking import BlockingDetector
from .body_limit import BodyLimitMiddleware
from .compose import Layer, compose
from .compression import CompressionMiddleware, GZipMiddleware, RequestDecompressionMiddleware
from .cors import CORSMiddleware
from .csrf import CSRFMiddleware, csrf_token, rotate_csrf_token
from .https_redirect import HTTPSRedirectMiddleware
from .offload import (
    CallLostError,
    OffloadMiddleware,
    PoolFullError,
    dask_pool,
    pool_full_handler,
    process_pool,
    run_in_process,
    run_in_thread,
    thread_pool,
)
from .proxy_headers import ProxyHeadersMiddleware
from .rate_limit import RateLimit, RateLimitMiddleware, RateLimitStore
from .request_id import RequestIDFilter, RequestIDMiddleware, get_request_id
from .security_headers import NONCE, SecurityHeadersMiddleware, get_csp_nonce
from .sessions import (
    Session,
    SessionCookieTooLarge,
    SessionError,
    SessionMiddleware,
    SessionStore,
    SessionStoreError,
    get_session,
)
from .timeout import TimeoutMiddleware, Timeouts, get_deadline, remaining
from .timing import RequestTiming, TimingMiddleware, add_timing, timing
from .trusted_host import TrustedHostMiddleware
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
    "NONCE",
    "AccessLogMiddleware",
    "BlockingDetector",
    "BodyLimitMiddleware",
    "CORSMiddleware",
    "CSRFMiddleware",
    "CallLostError",
    "CompressionMiddleware",
    "GZipMiddleware",
    "HTTPSRedirectMiddleware",
    "Layer",
    "OffloadMiddleware",
    "OpenTelemetryMiddleware",
    "PoolFullError",
    "ProxyHeadersMiddleware",
    "RateLimit",
    "RateLimitMiddleware",
    "RateLimitStore",
    "RequestDecompressionMiddleware",
    "RequestIDFilter",
    "RequestIDMiddleware",
    "RequestTiming",
    "SecurityHeadersMiddleware",
    "Session",
    "SessionCookieTooLarge",
    "SessionError",
    "SessionMiddleware",
    "SessionStore",
    "SessionStoreError",
    "TimeoutMiddleware",
    "Timeouts",
    "TimingMiddleware",
    "TraceIDFilter",
    "TrustedHostMiddleware",
    "WSGIMiddleware",
    "__version__",
    "add_timing",
    "compose",
    "csrf_token",
    "dask_pool",
    "get_csp_nonce",
    "get_deadline",
    "get_request_id",
    "get_session",
    "pool_full_handler",
    "process_pool",
    "remaining",
    "rotate_csrf_token",
    "run_in_process",
    "run_in_thread",
    "thread_pool",
    "timing",
    "trace_request_id",
]
