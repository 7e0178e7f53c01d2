"""Composable, pure-ASGI middleware."""

from .blocking import BlockingDetector
from .compose import Layer, compose
from .cors import CORSMiddleware
from .offload import OffloadMiddleware, process_pool, run_in_process, run_in_thread, thread_pool
from .sessions import (
    Session,
    SessionCookieTooLarge,
    SessionError,
    SessionMiddleware,
    SessionStore,
    SessionStoreError,
)
from .wsgi import WSGIMiddleware

__version__ = "0.1.0"

__all__ = [
    "BlockingDetector",
    "CORSMiddleware",
    "Layer",
    "OffloadMiddleware",
    "Session",
    "SessionCookieTooLarge",
    "SessionError",
    "SessionMiddleware",
    "SessionStore",
    "SessionStoreError",
    "WSGIMiddleware",
    "__version__",
    "compose",
    "process_pool",
    "run_in_process",
    "run_in_thread",
    "thread_pool",
]
