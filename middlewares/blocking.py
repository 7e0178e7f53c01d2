"""Report requests that block the event loop (ASGI 3: one loop serves every connection)."""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
import traceback
from collections.abc import Callable
from types import FrameType

from ._types import ASGIApp, Receive, Scope, Send
from .offload import threadsafe_caller

__all__ = ["ENV_VAR", "BlockingDetector"]

#: Setting this environment variable to ``1``/``true``/``yes``/``on`` turns the detector on
#: when ``enabled`` is not given.
ENV_VAR = "MIDDLEWARES_DETECT_BLOCKING"

_TRUE = frozenset({"1", "true", "yes", "on"})


class BlockingDetector:
    """Log the request that blocked the event loop for longer than ``threshold``.

    While at least one request is in flight, a watchdog thread asks the event loop to run a
    tiny callback every ``threshold / 2`` seconds. When the callback has not run after
    ``threshold`` seconds, the loop is blocked: the watchdog samples the loop thread's stack
    with ``sys._current_frames()``, finds which request's handler is on it, and logs a warning
    with the method, path and stack; once the loop runs again it logs how long it was blocked.
    The watchdog thread exits when no request is in flight. Records carry ``method``, ``path``
    and ``blocked_for`` (seconds, on the second record) as ``extra`` attributes.

    Off unless turned on: ``enabled=True``, or the ``MIDDLEWARES_DETECT_BLOCKING`` environment
    variable set to ``1`` when ``enabled`` is not given. When off, it adds no cost at all.

    Args:
        app: The ASGI application to wrap.
        threshold: Seconds of loop stall worth reporting. Defaults to 0.1.
        enabled: Turn detection on or off; None reads ``MIDDLEWARES_DETECT_BLOCKING``.
        logger: The logger, or its name. Defaults to ``"middlewares.blocking"``.
        clock: Monotonic clock in seconds, for the reported durations.

    Raises:
        ValueError: a non-positive ``threshold``.
    """

    __slots__ = ("_monitor", "app")

    def __init__(
        self,
        app: ASGIApp,
        *,
        threshold: float = 0.1,
        enabled: bool | None = None,
        logger: logging.Logger | str = "middlewares.blocking",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not isinstance(threshold, (int, float)) or not threshold > 0:
            raise ValueError(f"threshold must be a positive number of seconds, got {threshold!r}")
        if enabled is None:
            enabled = os.environ.get(ENV_VAR, "").strip().lower() in _TRUE
        self.app = app
        log = logging.getLogger(logger) if isinstance(logger, str) else logger
        self._monitor = _Monitor(float(threshold), log, clock) if enabled else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        monitor = self._monitor
        if monitor is None or scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        watchdog = monitor.enter()
        try:
            await self.app(scope, receive, send)
        finally:
            watchdog.leave()


class _Monitor:
    """The watchdogs of one detector, one per event-loop thread; the only shared state."""

    __slots__ = ("_lock", "_watchdogs", "clock", "logger", "threshold")

    def __init__(self, threshold: float, logger: logging.Logger, clock: Callable[[], float]):
        self.threshold = threshold
        self.logger = logger
        self.clock = clock
        self._lock = threading.Lock()
        self._watchdogs: dict[int, _Watchdog] = {}

    def enter(self) -> _Watchdog:
        ident = threading.get_ident()
        with self._lock:
            watchdog = self._watchdogs.get(ident)
            if watchdog is None or not watchdog.add():
                watchdog = self._watchdogs[ident] = _Watchdog(self, ident, threadsafe_caller())
        return watchdog

    def forget(self, watchdog: _Watchdog) -> None:
        with self._lock:
            if self._watchdogs.get(watchdog.loop_thread) is watchdog:
                del self._watchdogs[watchdog.loop_thread]


class _Watchdog:
    __slots__ = (
        "_call_soon",
        "_idle",
        "_inflight",
        "_lock",
        "_monitor",
        "_thread",
        "loop_thread",
    )

    def __init__(self, monitor: _Monitor, loop_thread: int, call_soon: Callable[..., None]):
        self._monitor = monitor
        self.loop_thread = loop_thread
        self._call_soon = call_soon
        self._lock = threading.Lock()
        self._inflight = 1
        self._idle = threading.Event()  # set when the last request leaves: stop at once
        self._thread = threading.Thread(
            target=self._watch, name="middlewares-blocking-watchdog", daemon=True
        )
        self._thread.start()

    def add(self) -> bool:
        """Count one more request; False if this watchdog is already stopping."""
        with self._lock:
            if self._inflight == 0:
                return False
            self._inflight += 1
            return True

    def leave(self) -> None:
        with self._lock:
            self._inflight -= 1
            if self._inflight == 0:
                self._idle.set()

    def _busy(self) -> bool:
        with self._lock:
            return self._inflight > 0

    def _watch(self) -> None:
        monitor = self._monitor
        threshold = monitor.threshold
        clock = monitor.clock
        while self._busy():
            beat = threading.Event()
            sent = clock()
            self._call_soon(beat.set)
            if beat.wait(threshold):
                self._idle.wait(threshold / 2)
                continue
            method, path = self._report_stall(sent)
            while not beat.wait(threshold) and self._busy():
                pass
            if beat.is_set():
                blocked_for = clock() - sent
                monitor.logger.warning(
                    "event loop was blocked for %.3f s while serving %s %s",
                    blocked_for,
                    method,
                    path,
                    extra={"method": method, "path": path, "blocked_for": blocked_for},
                )
        self._monitor.forget(self)

    def _report_stall(self, sent: float) -> tuple[str, str]:
        monitor = self._monitor
        frame = sys._current_frames().get(self.loop_thread)
        method, path = request_on_stack(frame)
        stack = "".join(traceback.format_stack(frame)) if frame is not None else ""
        monitor.logger.warning(
            "event loop blocked for more than %.3f s while serving %s %s; "
            "stack of the event loop thread:\n%s",
            monitor.clock() - sent,
            method,
            path,
            stack,
            extra={"method": method, "path": path},
        )
        return method, path


def request_on_stack(frame: FrameType | None) -> tuple[str, str]:
    """Return ``(method, path)`` of the innermost detector call on ``frame``'s stack.

    A running coroutine's awaiting callers are on its thread's stack, so the detector's own
    ``__call__`` frame, holding ``scope``, is found by walking ``f_back``.
    """
    target = BlockingDetector.__call__.__code__
    while frame is not None:
        if frame.f_code is target:
            scope = frame.f_locals.get("scope") or {}
            method = scope.get("method", "WEBSOCKET" if scope.get("type") == "websocket" else "?")
            return str(method), str(scope.get("path", "?"))
        frame = frame.f_back
    return "?", "(no request on the loop's stack)"
