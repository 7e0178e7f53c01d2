"""W3C Server Timing (https://www.w3.org/TR/server-timing/): the ``Server-Timing`` response
header, application metrics carried by a context variable, and per-request timing hooks."""

from __future__ import annotations

import logging
import math
import re
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from contextvars import ContextVar
from types import TracebackType
from typing import Literal, NamedTuple

from ._core.headers import get_header, merge_vary
from ._core.origins import compile_origin
from ._core.outcome import Outcome, ends_response, get_outcome, request_outcome
from ._core.paths import PathMatcher, PathPattern, route_path
from ._core.proxies import request_origin
from ._types import ASGIApp, Message, RawHeaders, Receive, Scope, Send

__all__ = [
    "HEADER_BUDGET",
    "Clock",
    "Expose",
    "Metric",
    "RequestTiming",
    "TimingHook",
    "TimingMiddleware",
    "add_timing",
    "format_metric",
    "quote_string",
    "route_template",
    "timing",
]

logger = logging.getLogger("middlewares.timing")

#: A monotonic clock in seconds, such as ``time.perf_counter``.
Clock = Callable[[], float]

# RFC 9110 §5.6.2: token = 1*tchar; the Server Timing spec's metric-name is a token.
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# RFC 9110 §5.6.4: a quoted-string may hold HTAB, SP, VCHAR and obs-text; every other control
# character (CR, LF, NUL, DEL...) cannot be sent at all, even escaped, so it becomes a space.
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
#: Most bytes of application metrics put in one ``Server-Timing`` field. A loop that adds a
#: metric per row must not produce a header that proxies refuse (nginx's default buffer for
#: all response headers is 4 or 8 KiB, and answers 502 beyond it).
HEADER_BUDGET = 2048
_SERVER_TIMING = b"server-timing"
_TIMING_ALLOW_ORIGIN = b"timing-allow-origin"


class Metric(NamedTuple):
    """One ``Server-Timing`` metric: ``name;dur=<ms>;desc="<desc>"``.

    Args:
        name: The metric name, an HTTP token (``db``, ``cache.read``).
        dur: The duration in milliseconds, or None for a metric without one (``miss``).
        desc: A human-readable description, or None.
    """

    name: str
    dur: float | None = None
    desc: str | None = None


class RequestTiming(NamedTuple):
    """What a timing hook learns about one finished request. Durations are in seconds from the
    moment the middleware received the request.

    Attributes:
        scope: The request's ASGI scope, as the app left it.
        status: The response status; 499 when the client went away before the response was
            complete; the status sent, or 500, when the app raised or returned before
            completing its response.
        outcome: The word the access log uses: ``"ok"``, ``"error"`` (the app raised, see
            ``error``), ``"disconnect"``, or what a guard inside recorded (``"limited"``,
            ``"too_large"``, ``"timeout"``, ``"forbidden"``).
        ttfb: Time to first byte (``http.response.start`` handed to the server), or None.
        ttlb: Time to last byte (the server took the final body message), or None.
        duration: Time until the app returned or raised, background tasks included.
        metrics: The application's metrics, including those added after the headers went out.
        error: The exception the app raised, or None.
        raw_path: The scope's ``path`` when the request arrived.
        root_path: The scope's ``root_path`` when the request arrived.
    """

    scope: Scope
    status: int
    outcome: Outcome
    ttfb: float | None
    ttlb: float | None
    duration: float
    metrics: tuple[Metric, ...]
    error: BaseException | None
    raw_path: str
    root_path: str

    @property
    def method(self) -> str:
        """The HTTP method."""
        return str(self.scope.get("method", ""))

    @property
    def path(self) -> str:
        """The request path relative to the ``root_path`` the app is mounted at."""
        return route_path({"path": self.raw_path, "root_path": self.root_path})

    @property
    def template(self) -> str | None:
        """The matched route template (``/users/{id}``) when the framework exposes one
        (Starlette's ``scope["route"]``, Litestar's ``scope["path_template"]``), else None."""
        return route_template(self.scope, self.root_path)

    @property
    def route(self) -> str:
        """The route template when known, else the path."""
        template = self.template
        return self.path if template is None else template


#: Called once per finished request, before an exception the app raised propagates.
TimingHook = Callable[[RequestTiming], object]
#: ``"always"``, ``"never"``, a list of origins, or a predicate ``scope -> bool``.
Expose = Literal["always", "never"] | Sequence[str] | Callable[[Scope], bool]

# The running request's clock and metric list. The list is shared, not copied, by tasks and
# threads that copy the context (Starlette runs sync endpoints in a thread with a copy), so
# metrics added there reach the request.
_current: ContextVar[tuple[Clock, list[Metric]] | None] = ContextVar(
    "middlewares.timing", default=None
)


def _check_name(name: str) -> None:
    if not isinstance(name, str) or not _TOKEN.fullmatch(name):
        raise ValueError(
            f"a Server-Timing metric name must be an HTTP token (letters, digits and"
            f" !#$%&'*+-.^_`|~), got {name!r}"
        )


def _check_desc(desc: str | None) -> None:
    if desc is not None and not isinstance(desc, str):
        raise TypeError(f"desc must be a string or None, got {desc!r}")


def add_timing(name: str, dur: float | None = None, desc: str | None = None) -> None:
    """Add a metric to the running request's ``Server-Timing`` header and hooks.

    Outside a request handled by ``TimingMiddleware`` the metric is checked and dropped, so
    library code can call this unconditionally.

    Args:
        name: The metric name, an HTTP token.
        dur: The duration in milliseconds (finite, >= 0), or None.
        desc: A description; any text, escaped when sent.

    Raises:
        ValueError: ``name`` is not a token or ``dur`` is negative or not finite.
    """
    _check_name(name)
    _check_desc(desc)
    if dur is not None:
        if isinstance(dur, bool) or not isinstance(dur, (int, float)):
            raise TypeError(f"dur must be a number of milliseconds or None, got {dur!r}")
        if not math.isfinite(dur) or dur < 0:
            raise ValueError(f"dur must be a finite number of milliseconds >= 0, got {dur!r}")
    current = _current.get()
    if current is not None:
        current[1].append(Metric(name, dur, desc))


class timing:  # used like a function: ``with timing("db"):``
    """Time a block and add it as a metric: ``with timing("db", desc="users query"):``.

    Works as ``with`` and ``async with``, in the request's task and in threads or tasks that
    copied its context. The block's time is added even when it raises. Uses the middleware's
    clock; outside a request the block runs untimed. Create one per block, as ``with
    timing(...)`` does: a shared instance entered by two concurrent requests would mix them.

    Args:
        name: The metric name, an HTTP token.
        desc: A description, escaped when sent.

    Raises:
        ValueError: ``name`` is not a token.
    """

    __slots__ = ("_current", "_desc", "_name", "_start")

    def __init__(self, name: str, *, desc: str | None = None) -> None:
        _check_name(name)
        _check_desc(desc)
        self._name = name
        self._desc = desc
        self._current: tuple[Clock, list[Metric]] | None = None
        self._start = 0.0

    def __enter__(self) -> timing:
        current = self._current = _current.get()
        if current is not None:
            self._start = current[0]()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        current = self._current
        if current is not None:
            clock, metrics = current
            metrics.append(Metric(self._name, (clock() - self._start) * 1000.0, self._desc))

    async def __aenter__(self) -> timing:
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.__exit__(exc_type, exc, traceback)


def quote_string(text: str) -> str:
    """Return ``text`` as an RFC 9110 §5.6.4 quoted-string.

    ``"`` and ``\\`` are escaped as quoted-pairs; control characters other than tab, which no
    quoted-string may carry, become spaces. Other characters are kept (sent as UTF-8 obs-text).
    """
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    return '"' + _CONTROL.sub(" ", escaped) + '"'


def format_metric(metric: Metric) -> str:
    """Serialise one metric as the Server Timing spec's ``server-timing-metric``."""
    text = metric.name
    if metric.dur is not None:
        text += f";dur={metric.dur:.3f}"  # milliseconds, to the microsecond
    if metric.desc is not None:
        text += ";desc=" + quote_string(metric.desc)
    return text


def route_template(scope: Scope, root_path: str = "") -> str | None:
    """Return the route template the framework matched, relative to ``root_path``, or None.

    Read by duck typing, with no framework import: Litestar's ``scope["path_template"]``, or
    Starlette's ``scope["route"].path_format`` prefixed with the mount points the request went
    through (Starlette records them in ``scope["root_path"]``). A request that stopped at a
    mounted app gives the mount's template, ``/static/{path:path}``.
    """
    template = scope.get("path_template")
    if isinstance(template, str):
        return template
    path_format = getattr(scope.get("route"), "path_format", None)
    if not isinstance(path_format, str):
        return None
    root: str = scope.get("root_path", "")
    prefix = root[len(root_path) :] if root.startswith(root_path) else root
    if hasattr(scope["route"], "routes"):  # a Mount: its own path is already in root_path
        return prefix.rstrip("/") + "/{path:path}"
    return prefix.rstrip("/") + path_format or "/"


def _normalise_origin(origin: str) -> bytes:
    if not isinstance(origin, str):
        raise TypeError(f"expose origins must be strings, got {origin!r}")
    exact, _ = compile_origin(origin, "expose")
    if exact is None or exact == "null":
        raise ValueError(
            f"expose origins must be exact scheme://host[:port] origins, without wildcards"
            f" or 'null', got {origin!r}"
        )
    return exact.encode("ascii")


def exposure(scope: Scope, origins: frozenset[bytes]) -> tuple[bool, bytes | None]:
    """Decide, for an origin list, whether the request may see ``Server-Timing``.

    Returns ``(expose, timing_allow_origin)``. A request with an ``Origin`` header is exposed
    when that origin is listed, and then names it in ``Timing-Allow-Origin`` (needed by
    browsers for cross-origin pages). A request without one (navigations, same-origin GETs) is
    exposed when the server's own origin (``request_origin``: the resolved scheme and
    ``Host``) is listed.
    """
    origin = get_header(scope["headers"], b"origin")
    if origin is not None:
        return (True, origin) if origin.lower() in origins else (False, None)
    own = request_origin(scope)
    return own is not None and own.encode("latin-1") in origins, None


class TimingMiddleware:
    """Add a W3C ``Server-Timing`` header and report each request's timings to hooks.

    The header carries the time to first byte under ``metric`` (``app;dur=12.3``) and every
    metric the application added so far with ``timing()`` or ``add_timing()``; it is added as
    its own field, so a ``Server-Timing`` the app set is kept (RFC 9110 §5.3 joins them).
    Hooks are called once per finished request with a ``RequestTiming``: time to first and
    last byte, route template, status and outcome (499 for a client that left, 500 for an app
    that raised, reported before the exception propagates). Only HTTP requests are timed.

    Args:
        app: The ASGI application to wrap.
        metric: ``Server-Timing`` metric name for the time to first byte. Defaults to ``"app"``.
        on_timing: A hook, or a sequence of hooks, called with a ``RequestTiming`` once per
            finished request. Hooks run inline: keep them quick (``Histogram.observe``, a log
            line, a queue put). An exception in a hook is logged and swallowed.
        expose: Who gets the ``Server-Timing`` header, which reveals internal timings:
            ``"always"`` (the default), ``"never"`` (hooks only), a list of origins
            (``["https://app.example.com"]``: requests whose ``Origin``, or whose own origin
            when there is no ``Origin``, is listed; cross-origin ones also get
            ``Timing-Allow-Origin`` and every response ``Vary: Origin``), or a predicate
            ``scope -> bool`` (an internal network, a debug cookie).
        clock: Monotonic clock in seconds; tests inject a fake one. Defaults to
            ``time.perf_counter``.
        exclude_paths: Paths passed to the app untouched: no header, no hooks (see
            ``PathMatcher``).

    Raises:
        ValueError: ``metric`` is not a token, ``expose`` is an unknown word or holds an
            invalid origin.
        TypeError: a hook or ``clock`` is not callable.
    """

    __slots__ = (
        "_clock",
        "_exclude",
        "_header",
        "_hooks",
        "_mode",
        "_origins",
        "_predicate",
        "app",
    )

    def __init__(
        self,
        app: ASGIApp,
        *,
        metric: str = "app",
        on_timing: TimingHook | Sequence[TimingHook] | None = None,
        expose: Expose = "always",
        clock: Clock = time.perf_counter,
        exclude_paths: Iterable[PathPattern] = (),
    ) -> None:
        _check_name(metric)
        if on_timing is None:
            hooks: tuple[TimingHook, ...] = ()
        elif callable(on_timing):
            hooks = (on_timing,)
        else:
            hooks = tuple(on_timing)
        for hook in hooks:
            if not callable(hook):
                raise TypeError(f"on_timing must be a callable or a list of them, got {hook!r}")
        if not callable(clock):
            raise TypeError(f"clock must be a callable returning seconds, got {clock!r}")
        self._predicate: Callable[[Scope], bool] | None = None
        self._origins: frozenset[bytes] = frozenset()
        if isinstance(expose, str):
            if expose not in ("always", "never"):
                raise ValueError(
                    f"expose must be 'always', 'never', a list of origins or a predicate,"
                    f" got {expose!r}"
                )
            self._mode = expose
        elif callable(expose):
            self._mode = "predicate"
            self._predicate = expose
        else:
            self._mode = "origins"
            self._origins = frozenset(_normalise_origin(origin) for origin in expose)
        self.app = app
        self._header = metric.encode("ascii") + b";dur=%.3f"
        self._hooks = hooks
        self._clock = clock
        matcher = PathMatcher(exclude_paths)
        self._exclude = matcher if matcher else None

    def _exposure(self, scope: Scope) -> tuple[bool, bool, bytes | None]:
        """``(send Server-Timing, merge Vary: Origin, Timing-Allow-Origin value)``."""
        mode = self._mode  # never "always": callers take that path without asking
        if mode == "never":
            return False, False, None
        if mode == "origins":
            expose, allow_origin = exposure(scope, self._origins)
            return expose, True, allow_origin
        return bool(self._predicate(scope)), False, None  # type: ignore[misc]

    async def _call_exposing(self, scope: Scope, receive: Receive, send: Send) -> None:
        clock = self._clock
        header = self._header
        metrics: list[Metric] = []
        token = _current.set((clock, metrics))
        start = clock()
        try:
            expose, vary, allow_origin = self._exposure(scope)
            if not expose and not vary:
                await self.app(scope, receive, send)
                return

            def send_with_headers(message: Message) -> Awaitable[None]:
                if message["type"] == "http.response.start":
                    value = header % ((clock() - start) * 1000.0)
                    message = _with_headers(message, value, metrics, expose, vary, allow_origin)
                return send(message)

            await self.app(scope, receive, send_with_headers)
        finally:
            _current.reset(token)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or (self._exclude is not None and self._exclude.matches(scope)):
            await self.app(scope, receive, send)
            return
        if self._hooks:
            await self._call_reported(scope, receive, send)
            return
        if self._mode != "always":
            await self._call_exposing(scope, receive, send)
            return
        # The common case, inline and lean: a plain function returning send's awaitable (no
        # extra coroutine per message), one header appended to a copy of the app's list.
        clock = self._clock
        header = self._header
        metrics: list[Metric] = []
        token = _current.set((clock, metrics))
        start = clock()
        try:

            def send_with_server_timing(message: Message) -> Awaitable[None]:
                if message["type"] == "http.response.start":
                    value = header % ((clock() - start) * 1000.0)
                    if metrics:
                        value += _serialise(metrics)
                    headers = [*message.get("headers", ()), (_SERVER_TIMING, value)]
                    message = {**message, "headers": headers}
                return send(message)

            await self.app(scope, receive, send_with_server_timing)
        finally:
            _current.reset(token)

    async def _call_reported(self, scope: Scope, receive: Receive, send: Send) -> None:
        clock = self._clock
        start = clock()
        header = self._header
        # "always": only Server-Timing to append, no Vary or Timing-Allow-Origin to weigh.
        metrics_only = self._mode == "always"
        if metrics_only:
            expose, vary, allow_origin = True, False, None
        else:
            expose, vary, allow_origin = self._exposure(scope)
        path: str = scope.get("path", "")  # routers rewrite path and root_path: keep them
        root_path: str = scope.get("root_path", "")
        metrics: list[Metric] = []
        token = _current.set((clock, metrics))
        first: float | None = None
        last: float | None = None
        status: int | None = None
        trailers = complete = disconnected = False

        async def receive_watching_disconnect() -> Message:
            nonlocal disconnected
            message = await receive()
            if message["type"] == "http.disconnect":
                # Left before the response was complete, even if the app answers later.
                disconnected = disconnected or not complete
            return message

        async def send_final(message: Message) -> None:
            nonlocal last, complete, disconnected
            try:
                await send(message)
            except BaseException:
                disconnected = True
                raise
            last = clock()
            complete = True

        # Only the final message is awaited here (for the time to last byte and a failed
        # send); the others go straight to the server with no extra coroutine.
        def send_with_timing(message: Message) -> Awaitable[None]:
            nonlocal first, status, trailers
            kind = message["type"]
            if kind == "http.response.start":
                first = clock()
                status = message["status"]
                trailers = message.get("trailers", False)
                if expose or vary:
                    value = header % ((first - start) * 1000.0)
                    if vary or not metrics_only:
                        message = _with_headers(message, value, metrics, expose, vary, allow_origin)
                    else:
                        if metrics:
                            value += _serialise(metrics)
                        headers = [*message.get("headers", ()), (_SERVER_TIMING, value)]
                        message = {**message, "headers": headers}
            elif ends_response(message, trailers):
                return send_final(message)
            return send(message)

        error: BaseException | None = None
        try:
            await self.app(scope, receive_watching_disconnect, send_with_timing)
        except BaseException as raised:
            error = raised
            raise
        finally:
            end = clock()
            _current.reset(token)
            if complete and error is None and not disconnected and status is not None:
                # The common case, as request_outcome decides it, without the call.
                final_status, outcome = status, get_outcome(scope) or "ok"
            else:
                final_status, outcome = request_outcome(
                    status,
                    complete=complete,
                    error=error,
                    disconnected=disconnected,
                    recorded=get_outcome(scope),
                )
            record = _new_record(
                (
                    scope,
                    final_status,
                    outcome,
                    None if first is None else first - start,
                    None if last is None else last - start,
                    end - start,
                    tuple(metrics) if metrics else (),
                    error,
                    path,
                    root_path,
                )
            )
            for hook in self._hooks:
                try:
                    hook(record)
                except Exception:  # noqa: PERF203 - free in 3.11; one bad sink must not stop the rest
                    # A metrics sink must never turn a served request into an error.
                    logger.exception(
                        "on_timing hook %r raised; the response was not affected", hook
                    )


def _serialise(metrics: list[Metric]) -> bytes:
    """The application's metrics as a continuation of the Server-Timing list, stopping before
    the metric that would take it past ``HEADER_BUDGET`` bytes (hooks still get them all)."""
    parts: list[bytes] = []
    size = 0
    for metric in metrics:
        part = b", " + format_metric(metric).encode("utf-8")
        size += len(part)
        if size > HEADER_BUDGET:
            break
        parts.append(part)
    return b"".join(parts)


_new_record = RequestTiming._make


def _with_headers(
    message: Message,
    value: bytes,
    metrics: list[Metric],
    expose: bool,
    vary: bool,
    allow_origin: bytes | None,
) -> Message:
    """Return a copy of a response start with the timing headers added; the app's message and
    header list are left as they were (an app may reuse them for every response)."""
    headers: RawHeaders = [*message.get("headers", ())]
    if expose:
        if metrics:
            value += _serialise(metrics)
        headers.append((_SERVER_TIMING, value))
        if allow_origin is not None:
            headers.append((_TIMING_ALLOW_ORIGIN, allow_origin))
    if vary:
        merge_vary(headers, b"Origin")
    return {**message, "headers": headers}
