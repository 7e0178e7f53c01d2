"""Composable, pure-ASGI middleware."""

from .blocking import BlockingDetector
from .compose import Layer, compose
from .compression import CompressionMiddleware, GZipMiddleware, RequestDecompressionMiddleware
from .cors import CORSMiddleware
from .offload import OffloadMiddleware, process_pool, run_in_process, run_in_thread, thread_pool
from .rate_limit import RateLimit, RateLimitMiddleware, RateLimitStore
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

__version__ = "0.1.0"

__all__ = [
    "BlockingDetector",
    "CORSMiddleware",
    "CompressionMiddleware",
    "GZipMiddleware",
    "Layer",
    "OffloadMiddleware",
    "RateLimit",
    "RateLimitMiddleware",
    "RateLimitStore",
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
]
