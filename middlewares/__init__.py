"""Composable, pure-ASGI middleware."""

from .blocking import BlockingDetector
from .compose import Layer, compose
from .compression import CompressionMiddleware, GZipMiddleware, RequestDecompressionMiddleware
from .cors import CORSMiddleware
from .https_redirect import HTTPSRedirectMiddleware
from .offload import OffloadMiddleware, process_pool, run_in_process, run_in_thread, thread_pool
from .proxy_headers import ProxyHeadersMiddleware
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
from .trusted_host import TrustedHostMiddleware
from .wsgi import WSGIMiddleware

__version__ = "0.1.0"

__all__ = [
    "BlockingDetector",
    "CORSMiddleware",
    "CompressionMiddleware",
    "GZipMiddleware",
    "HTTPSRedirectMiddleware",
    "Layer",
    "OffloadMiddleware",
    "ProxyHeadersMiddleware",
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
    "TrustedHostMiddleware",
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
