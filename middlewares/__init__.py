"""Composable, pure-ASGI middleware."""

from .blocking import BlockingDetector
from .body_limit import BodyLimitMiddleware
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
from .timeout import TimeoutMiddleware, Timeouts, get_deadline, remaining
from .timing import RequestTiming, TimingMiddleware, add_timing, timing
from .wsgi import WSGIMiddleware

__version__ = "0.1.0"

__all__ = [
    "BlockingDetector",
    "BodyLimitMiddleware",
    "CORSMiddleware",
    "CompressionMiddleware",
    "GZipMiddleware",
    "Layer",
    "OffloadMiddleware",
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
    "TimeoutMiddleware",
    "Timeouts",
    "TimingMiddleware",
    "WSGIMiddleware",
    "__version__",
    "add_timing",
    "compose",
    "get_deadline",
    "get_request_id",
    "process_pool",
    "remaining",
    "run_in_process",
    "run_in_thread",
    "thread_pool",
    "timing",
]
