"""Request timeouts: RFC 9110 §15.6.5 (504 Gateway Timeout) before the response starts, an
abort after it, cancellation through anyio cancel scopes, and the deadline as a context
variable."""

from __future__ import annotations

import asyncio
import logging
import math
import time
import weakref
from collections.abc import Awaitable, Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from http import HTTPStatus

import anyio
import anyio.lowlevel

from ._core.headers import get_header
from ._core.outcome import ends_response, set_outcome
from ._core.paths import PathPattern, PathTable
from ._core.problem import send_problem
from ._types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["TimeoutMiddleware", "Timeouts", "get_deadline", "remaining"]

logger = logging.getLogger("middlewares.timeout")

_STARTS = frozenset(
    {"http.response.start", "websocket.accept", "websocket.close", "websocket.http.response.start"}
)
# Response messages after the start that show the app making progress (the idle budget).
_PROGRESS = frozenset(
    {
        "http.response.body",
        "http.response.zerocopysend",
        "http.response.trailers",
        "websocket.http.response.body",
    }
)
_EVENT_STREAM = b"text/event-stream"
# RFC 6455 §7.4.1 / IANA registry: 1013 "Try Again Later".
_TRY_AGAIN_LATER = 1013


def _check_budget(name: str, value: object) -> float | None:
    if value is not None and (
        isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < math.inf
    ):
        raise ValueError(f"{name} must be a positive number of seconds or None, got {value!r}")
    return value


@dataclass(frozen=True)
class Timeouts:
    """The time budgets of a request, in seconds; None leaves one out.

    Args:
        first_byte: From the call until the app starts its response (``http.response.start``,
            or a WebSocket's accept or close). Defaults to 30.
        idle: The longest pause between two response body messages once the response started.
        total: From the call until the response is complete.
    """

    first_byte: float | None = 30.0
    idle: float | None = None
    total: float | None = None

    def __post_init__(self) -> None:
        for name in ("first_byte", "idle", "total"):
            _check_budget(name, getattr(self, name))


class _Budget:
    """The current request's deadline in ``time.monotonic()`` seconds, updated in place so
    copies of the context (task groups, worker threads) see it move."""

    __slots__ = ("deadline",)

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline


_budget: ContextVar[_Budget | None] = ContextVar("middlewares.timeout", default=None)


def get_deadline() -> float | None:
    """Return when the current request's time budget runs out, in ``time.monotonic()``
    seconds, or None outside a timed request or when no budget applies any more."""
    budget = _budget.get()
    if budget is None or budget.deadline == math.inf:
        return None
    return budget.deadline


def remaining() -> float | None:
    """Return the seconds left in the current request's time budget (0.0 once it ran out),
    or None when there is no deadline. Works in worker threads that copied the context:
    pass it to a database or HTTP client as its timeout."""
    deadline = get_deadline()
    return None if deadline is None else max(0.0, deadline - time.monotonic())


class _Watch:
    """One timer per asyncio event loop for every timed request on it.

    An anyio cancel scope with a deadline costs a timer of its own per request, armed and
    cancelled each time (about 4 µs on asyncio, measured); the common request ends long before
    its deadline. Here a request only records its deadline, and a single timer, armed for the
    earliest one, cancels the scopes whose deadline passed and re-arms itself. It also keeps
    the backend's cancel scope class: ``anyio.CancelScope()`` looks the backend up on every
    call, which costs more than entering and leaving the scope.
    """

    __slots__ = ("_at", "_deadlines", "_handle", "scope_class")

    def __init__(self) -> None:
        self.scope_class: type[anyio.CancelScope] = type(anyio.CancelScope())
        self._deadlines: dict[anyio.CancelScope, float] = {}
        self._handle: asyncio.TimerHandle | None = None
        self._at = math.inf

    def set(self, scope: anyio.CancelScope, deadline: float) -> None:
        if deadline == math.inf:
            self._deadlines.pop(scope, None)
            return
        self._deadlines[scope] = deadline
        if deadline < self._at:
            self._arm(deadline)

    def discard(self, scope: anyio.CancelScope) -> None:
        self._deadlines.pop(scope, None)

    def _arm(self, when: float) -> None:
        if self._handle is not None:
            self._handle.cancel()
        self._at = when
        self._handle = asyncio.get_running_loop().call_at(when, self._sweep)

    def _sweep(self) -> None:
        self._handle = None
        self._at = math.inf
        # asyncio runs a timer up to one clock resolution early; uvloop has no such attribute
        # and rounds to the millisecond.
        loop = asyncio.get_running_loop()
        now = loop.time() + getattr(loop, "_clock_resolution", 0.001)
        earliest = math.inf
        for scope, deadline in list(self._deadlines.items()):
            if deadline <= now:
                del self._deadlines[scope]
                scope.cancel()
            elif deadline < earliest:
                earliest = deadline
        if earliest < math.inf:
            self._arm(earliest)


_watches: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Watch] = weakref.WeakKeyDictionary()


_last: tuple[weakref.ref[asyncio.AbstractEventLoop], _Watch] | None = None


def _watch_for(loop: asyncio.AbstractEventLoop) -> _Watch:
    global _last
    last = _last
    if last is not None and last[0]() is loop:
        return last[1]  # the common case: one loop per process
    watch = _watches.get(loop)
    if watch is None:
        watch = _watches[loop] = _Watch()
    _last = (weakref.ref(loop), watch)
    return watch


class TimeoutMiddleware:
    """Bound how long a request may take, and cancel the app when it takes longer.

    By default only the time to the first byte is bounded: an app that has not started its
    response after ``timeout`` seconds is cancelled (anyio cancel scopes, on asyncio and trio;
    calls waiting on `run_in_thread` or `run_in_process` are abandoned and counted by their
    pool) and the client gets ``504 Gateway Timeout`` (or ``status_code``) as RFC 9457 problem
    JSON with ``Connection: close``. ``idle_timeout`` bounds the pauses between response body
    messages and ``total_timeout`` the whole response; once the response started, a timeout
    cancels the app and leaves the response unfinished, so the server closes the connection,
    with a warning logged: never a second ``http.response.start``, never a stream that ends
    as if complete. A response start that races the deadline either goes out whole (and the
    app's response continues) or not at all (and the 504 is sent). Work after the response is
    complete, such as background tasks, is never timed. Event streams
    (``Content-Type: text/event-stream``) are exempt from the idle and total budgets, and
    WebSockets from all of them, unless asked. The outcome is recorded as ``timeout``, and
    `remaining` tells code running for the request how many seconds it has left.

    Args:
        app: The ASGI application to wrap.
        timeout: Seconds until the response must start; None for no such limit. Defaults
            to 30.
        idle_timeout: Seconds the response may pause between two body messages once started;
            None (the default) for no limit.
        total_timeout: Seconds until the response must be complete; None (the default) for
            no limit.
        path_timeouts: Budgets for some paths: a mapping of path pattern (see ``PathMatcher``)
            to a `Timeouts`, a number (the time to first byte, with the other two budgets
            as configured above), or None (not timed at all). The first matching pattern wins.
        status_code: The status sent when the response did not start in time. Defaults to
            504; 503 suits a service that is shedding load.
        include_event_streams: Apply ``idle_timeout`` and ``total_timeout`` to
            ``text/event-stream`` responses too.
        include_websockets: Time WebSocket connections: ``timeout`` until the app accepts or
            closes, ``total_timeout`` for the whole connection, which is then closed with code
            1013 (try again later).

    Raises:
        ValueError: a budget that is not a positive number of seconds or None, a
            ``status_code`` that is not a 4xx or 5xx status, or an invalid path pattern.
    """

    __slots__ = (
        "_budgets",
        "_event_streams",
        "_path_budgets",
        "_status",
        "_title",
        "_websockets",
        "app",
    )

    def __init__(
        self,
        app: ASGIApp,
        *,
        timeout: float | None = 30.0,
        idle_timeout: float | None = None,
        total_timeout: float | None = None,
        path_timeouts: Mapping[PathPattern, Timeouts | float | None] | None = None,
        status_code: int = 504,
        include_event_streams: bool = False,
        include_websockets: bool = False,
    ) -> None:
        budgets = Timeouts(
            _check_budget("timeout", timeout),
            _check_budget("idle_timeout", idle_timeout),
            _check_budget("total_timeout", total_timeout),
        )
        if (
            isinstance(status_code, bool)
            or not isinstance(status_code, int)
            or not 400 <= status_code <= 599
        ):
            raise ValueError(f"status_code must be a 4xx or 5xx status, got {status_code!r}")
        try:
            self._title = HTTPStatus(status_code).phrase
        except ValueError:
            self._title = "Timeout"
        per_path: dict[PathPattern, Timeouts | None] = {}
        for pattern, value in (path_timeouts or {}).items():
            if value is None or isinstance(value, Timeouts):
                per_path[pattern] = value
            else:
                first = _check_budget(f"path_timeouts[{pattern!r}]", value)
                per_path[pattern] = Timeouts(first, idle_timeout, total_timeout)
        table = PathTable(per_path)
        self.app = app
        self._budgets: Timeouts | None = (
            budgets if (timeout, idle_timeout, total_timeout) != (None, None, None) else None
        )
        self._path_budgets = table if table else None
        self._status = status_code
        self._event_streams = include_event_streams
        self._websockets = include_websockets

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind != "http" and (kind != "websocket" or not self._websockets):
            await self.app(scope, receive, send)
            return
        table = self._path_budgets
        budgets = self._budgets if table is None else table.lookup(scope, self._budgets)
        if budgets is None:
            await self.app(scope, receive, send)
            return
        # asyncio: one shared timer per loop (see _Watch); trio: its cancel scopes' deadlines,
        # which trio keeps in one sorted structure already.
        loop = asyncio._get_running_loop()
        if loop is None:
            watch = None
            now: Callable[[], float] = anyio.current_time
            scope_class = anyio.CancelScope
        else:
            watch = _watch_for(loop)
            now = loop.time
            scope_class = watch.scope_class
        start = now()
        to_monotonic = time.monotonic() - start
        idle = budgets.idle
        total = math.inf if budgets.total is None else start + budgets.total
        deadline = total if budgets.first_byte is None else min(start + budgets.first_byte, total)
        budget = _Budget(to_monotonic + deadline)
        token = _budget.set(budget)
        started = trailers = False
        timed = True

        with scope_class() as cancel_scope:

            def move_deadline(deadline: float) -> None:
                budget.deadline = to_monotonic + deadline
                if watch is not None:
                    watch.set(cancel_scope, deadline)
                else:
                    cancel_scope.deadline = deadline

            # A plain function returning an awaitable: no coroutine of its own per message.
            def send_with_timeout(message: Message) -> Awaitable[None]:
                nonlocal started, timed, total, idle, trailers
                if not timed:  # started, and no budget left to keep
                    return send(message)
                if cancel_scope.cancel_called:
                    # Out of time: nothing more reaches the client; the app stops here.
                    return anyio.lowlevel.checkpoint()
                kind = message["type"]
                if not started:
                    if kind not in _STARTS:
                        return send(message)
                    started = True
                    if kind == "websocket.close":
                        # A refusal before accept is the whole answer: nothing more to time.
                        timed = False
                        move_deadline(math.inf)
                        return send(message)
                    trailers = message.get("trailers", False)
                    if (
                        not self._event_streams
                        and (idle is not None or total < math.inf)
                        and _is_event_stream(message)
                    ):
                        idle, total = None, math.inf
                    deadline = total if idle is None else min(now() + idle, total)
                    move_deadline(deadline)
                    if deadline == math.inf:
                        timed = False
                        return send(message)
                    # The start goes out whole or not at all (Starlette PR #1706).
                    return _shielded(scope_class, send, message)
                if ends_response(message, trailers):
                    # Complete: what the app does next (background tasks) is not timed.
                    timed = False
                    move_deadline(math.inf)
                elif idle is not None and kind in _PROGRESS:
                    move_deadline(min(now() + idle, total))
                return send(message)

            move_deadline(deadline)
            try:
                await self.app(scope, receive, send_with_timeout)
            finally:
                if watch is not None:
                    watch.discard(cancel_scope)
                _budget.reset(token)
        # cancel_called, not cancelled_caught: an app that swallowed the cancellation and
        # returned timed out all the same.
        if cancel_scope.cancel_called:
            await self._timed_out(scope, send, started)

    async def _timed_out(self, scope: Scope, send: Send, started: bool) -> None:
        set_outcome(scope, "timeout")
        websocket = scope["type"] == "websocket"
        what = "WebSocket" if websocket else scope.get("method")
        if not started:
            logger.warning("%s %r timed out before its response started", what, scope.get("path"))
            if websocket:
                await send({"type": "websocket.close", "code": _TRY_AGAIN_LATER})
            else:
                await send_problem(
                    send,
                    self._status,
                    self._title,
                    "The response did not start in time.",
                    [(b"connection", b"close")],
                )
            return
        logger.warning(
            "%s %r timed out after its response started: the response is cut short and the"
            " connection closed",
            what,
            scope.get("path"),
        )
        if websocket:
            await send({"type": "websocket.close", "code": _TRY_AGAIN_LATER, "reason": "Timeout"})


async def _shielded(scope_class: type[anyio.CancelScope], send: Send, message: Message) -> None:
    with scope_class(shield=True):
        await send(message)


def _is_event_stream(message: Message) -> bool:
    content_type = get_header(message.get("headers", ()), b"content-type")
    return content_type is not None and content_type.lower().startswith(_EVENT_STREAM)
