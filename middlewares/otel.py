"""OpenTelemetry server spans and metrics following the stable HTTP semantic conventions
(https://opentelemetry.io/docs/specs/semconv/http/), with W3C Trace Context propagation."""

from __future__ import annotations

import functools
import logging
import os
import re
import threading
import time
import weakref
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ._core.outcome import Outcome, ends_response, get_outcome
from ._core.paths import route_template
from ._core.proxies import client_host, request_scheme
from ._types import ASGIApp, Message, RawHeaders, Receive, Scope, Send
from .access_log import TRACE_ID_KEY, redact_query
from .request_id import new_request_id
from .request_id import request_id as _request_id

try:
    from opentelemetry import context as _context
    from opentelemetry import metrics, propagate, trace
    from opentelemetry.context import Context
    from opentelemetry.metrics._internal import _ProxyMeterProvider
    from opentelemetry.propagators.textmap import Getter
    from opentelemetry.trace import SpanKind, Status, StatusCode

    # Providers that record nothing: no SDK configured, or the API's no-op.
    _NO_TRACING = frozenset({trace.NoOpTracerProvider, trace.ProxyTracerProvider, type(None)})
    _NO_METRICS = frozenset({metrics.NoOpMeterProvider, _ProxyMeterProvider, type(None)})
    _EMPTY_CONTEXT = Context()  # what extraction gives when no header carries a context
    _MISSING: ImportError | None = None
except ImportError as missing:  # the API is the optional [otel] extra
    _MISSING = missing
    Getter = object  # type: ignore[assignment,misc]

if TYPE_CHECKING:
    from opentelemetry.metrics import MeterProvider
    from opentelemetry.trace import TracerProvider

__all__ = ["OpenTelemetryMiddleware", "TraceIDFilter", "trace_request_id"]

# Semantic conventions, HTTP server metrics: the advisory histogram boundaries, in seconds.
_DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10)
# http.request.method on metrics is one of the RFC 9110 methods (and PATCH, QUERY) or "_OTHER", so
# a client inventing methods cannot create unbounded series.
_KNOWN_METHODS = frozenset(
    {"CONNECT", "DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", "TRACE", "QUERY"}
)
_ACTIVE_KEY = "middlewares.otel"
_FIRST_BYTE_EVENT = "http.response.first_byte"


class _HeaderGetter(Getter):  # type: ignore[type-arg]
    """Reads propagation fields straight from the ASGI header list (no per-request dict)."""

    def get(self, carrier: RawHeaders, key: str) -> list[str] | None:
        name = key.lower().encode("latin-1")
        values = [value.decode("latin-1") for field, value in carrier if field == name]
        return values or None

    def keys(self, carrier: RawHeaders) -> list[str]:
        return [field.decode("latin-1") for field, _ in carrier]


_GETTER = _HeaderGetter()
_UNSET = object()
_PROVIDERS_FROM_ENVIRONMENT = any(
    name in os.environ for name in ("OTEL_PYTHON_TRACER_PROVIDER", "OTEL_PYTHON_METER_PROVIDER")
)


def _require() -> None:
    if _MISSING is not None:
        raise ImportError(
            "OpenTelemetryMiddleware needs the 'otel' extra: pip install 'middlewares[otel]'"
        ) from _MISSING


def http_route(scope: Scope) -> str | None:
    """The route template for ``http.route`` and the span name, or None.

    Starlette's rule, so spans match its middleware's: the matched route's ``path_format``
    under the ``root_path`` its mounts built, or the mount's own path when a mounted app
    answered; otherwise the framework's template (Litestar's ``path_template``).
    """
    route = scope.get("route")
    path_format = getattr(route, "path_format", None) if route is not None else None
    if isinstance(path_format, str):
        root: str = scope.get("root_path", "")
        if hasattr(route, "routes"):  # a Mount: its app answered below the mount point
            return root or "/"
        return root.rstrip("/") + path_format or "/"
    return route_template(scope)


def _server(host: bytes | None, server: Any) -> tuple[str | None, int | None]:
    """``server.address`` and ``server.port``: from the ``Host`` value when there is one, else
    the scope's ``server``."""
    port = server[1] if server else None
    if host is None:
        return (server[0] if server else None), port
    text = host.decode("latin-1").lower()
    if text.startswith("["):  # RFC 3986 IP-literal
        name, _, rest = text[1:].partition("]")
        explicit = rest[1:] if rest.startswith(":") else ""
    else:
        name, _, explicit = text.partition(":")
    if explicit.isascii() and explicit.isdigit():  # not "²", which int() refuses
        port = int(explicit)
    return (name or None), port


def _full_url(scope: Scope) -> str:
    """The request URL that ``excluded_urls`` patterns are searched in, as Starlette builds it."""
    scheme = request_scheme(scope)
    host = None
    for key, value in scope.get("headers", ()):
        if key == b"host":
            host = value.decode("latin-1")
            break
    if host is None:
        server = scope.get("server")
        if server:
            name, port = server
            default = 443 if scheme in ("https", "wss") else 80
            host = name if port in (None, default) else f"{name}:{port}"
    query = scope.get("query_string", b"").decode("latin-1")
    url = f"{scheme}://{host}{scope.get('path', '')}" if host else str(scope.get("path", ""))
    return f"{url}?{query}" if query else url


def _attributes(scope: Scope, method: str, original: str) -> dict[str, Any]:
    """The span's attributes known when the request arrives (HTTP server span, stable)."""
    attributes: dict[str, Any] = {
        "http.request.method": method,
        "url.path": scope.get("path", ""),
        "url.scheme": request_scheme(scope),
    }
    if original != method:
        attributes["http.request.method_original"] = original
    query = scope.get("query_string")
    if query:
        attributes["url.query"] = redact_query(query)
    host = agent = None
    for key, value in scope.get("headers", ()):
        if key == b"host":
            host = value if host is None else host
        elif key == b"user-agent" and agent is None:
            agent = value
    address, port = _server(host, scope.get("server"))
    if address is not None:
        attributes["server.address"] = address
        if port is not None:
            attributes["server.port"] = port
    version = scope.get("http_version")
    if version:
        attributes["network.protocol.version"] = version
    client = client_host(scope)
    if client is not None:
        attributes["client.address"] = client
    if agent is not None:
        attributes["user_agent.original"] = agent.decode("latin-1")
    return attributes


@functools.lru_cache(maxsize=8)
def _propagated_fields(propagator: Any) -> frozenset[bytes]:
    """The header names the propagator reads (``traceparent``, ``tracestate``, ``baggage``)."""
    return frozenset(field.lower().encode("latin-1") for field in propagator.fields)


def _parent(headers: RawHeaders) -> Any:
    """The remote parent context, or an empty one: ``propagate.extract`` is asked only when a
    header the global propagator reads is present (an extraction costs a few µs)."""
    propagator = propagate.get_global_textmap()
    fields = _propagated_fields(propagator)
    for key, _ in headers:
        if key in fields:
            return propagate.extract(headers, getter=_GETTER)
    return _EMPTY_CONTEXT


class _InFlight:
    """``http.server.active_requests`` as an observable up-down counter: requests change a
    count in memory and the SDK reads it when it collects, instead of two synchronous
    measurements per request (about 6 µs each in the SDK)."""

    __slots__ = ("_counts", "_lock")

    def __init__(self) -> None:
        self._counts: dict[tuple[str, str], int] = {}
        self._lock = threading.Lock()  # requests may run on several threads' event loops

    def add(self, key: tuple[str, str], delta: int) -> None:
        with self._lock:
            self._counts[key] = self._counts.get(key, 0) + delta

    def observe(self, options: Any) -> list[Any]:
        with self._lock:
            counts = list(self._counts.items())
        return [
            metrics.Observation(count, {"http.request.method": method, "url.scheme": scheme})
            for (method, scheme), count in counts
        ]


# One in-flight count per meter provider (None: the global one): the SDK keeps the callback
# of the first observable registered under a name, so every middleware on a provider shares it.
_GLOBAL_IN_FLIGHT = _InFlight()
_IN_FLIGHT: weakref.WeakKeyDictionary[Any, _InFlight] = weakref.WeakKeyDictionary()


def _in_flight(provider: Any) -> _InFlight:
    if provider is None:
        return _GLOBAL_IN_FLIGHT
    found = _IN_FLIGHT.get(provider)
    if found is None:
        found = _IN_FLIGHT[provider] = _InFlight()
    return found


def _global(module: Any, name: str) -> Any:
    """The provider set globally in ``module``, or None when none is.

    While none is set, the API's ``get_tracer_provider()`` and ``get_meter_provider()`` look
    an environment variable up on every call (about 0.7 µs each, most of the no-op path);
    the module's own global says the same for free. An API without that global, or a
    provider to be loaded from ``OTEL_PYTHON_*_PROVIDER``, takes the public call."""
    provider = getattr(module, name, _UNSET)
    if provider is None and not _PROVIDERS_FROM_ENVIRONMENT:
        return None
    if provider is _UNSET or provider is None:
        return trace.get_tracer_provider() if module is trace else metrics.get_meter_provider()
    return provider


def trace_request_id() -> str:
    """A request id generator for ``RequestIDMiddleware(generator=trace_request_id)``: the
    current trace id (32 hex digits) when ``OpenTelemetryMiddleware`` runs outside it, else a
    new random id. Requests an upstream service made in one trace share its id."""
    _require()
    context = trace.get_current_span().get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else new_request_id()


class TraceIDFilter(logging.Filter):
    """A logging filter that puts the current trace id, span id and request id on every record.

    Attach it to a handler and use ``%(trace_id)s %(span_id)s %(request_id)s`` in the format,
    or let a JSON formatter pick the attributes up. It never drops a record.

    Args:
        name: Passed to ``logging.Filter``; records from other loggers still pass.
        default: The value of an id outside a span or request. Defaults to ``"-"``.
    """

    def __init__(self, name: str = "", *, default: str = "-") -> None:
        _require()
        super().__init__(name)
        self.default = default

    def filter(self, record: logging.LogRecord) -> bool:
        context = trace.get_current_span().get_span_context()
        if context.is_valid:
            record.trace_id = format(context.trace_id, "032x")
            record.span_id = format(context.span_id, "016x")
        else:
            record.trace_id = record.span_id = self.default
        ident = _request_id.get()
        record.request_id = self.default if ident is None else ident
        return True


def _url_pattern(pattern: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern)
    except (re.error, TypeError) as error:
        raise ValueError(
            f"excluded_urls must hold regular expressions, got {pattern!r}: {error}"
        ) from None


def _excluded(urls: str | Sequence[str]) -> tuple[re.Pattern[str], ...]:
    if isinstance(urls, str):
        urls = [pattern.strip() for pattern in urls.split(",")] if urls else ()
    return tuple(_url_pattern(pattern) for pattern in urls)


class OpenTelemetryMiddleware:
    """Trace every HTTP request and WebSocket connection as one OpenTelemetry server span,
    and record the HTTP server metrics.

    A drop-in for Starlette's ``OpenTelemetryMiddleware``, with the same arguments and, for
    HTTP, the same span: named ``{method} {http.route}`` once the router has matched (never
    the raw path), with the stable HTTP semantic conventions' attributes, the parent taken
    from the incoming ``traceparent`` by the global propagator, and the exception recorded
    when the app raises or is cancelled. A request an inner middleware reports ending badly
    without a complete error response (a timeout after a 200 started) is an error whose
    ``error.type`` is that outcome. No span per ``receive`` or ``send``. It also records the
    ``http.server.request.duration`` histogram and the ``http.server.active_requests``
    counter, and leaves the trace id in ``scope["middlewares.trace_id"]`` for the access
    log. With no tracer and no meter provider configured it calls the app directly.

    Args:
        app: The ASGI application to wrap.
        excluded_urls: Regular expressions searched in the full request URL
            (``http://host/path?query``); a matching request is neither traced nor
            measured. A comma-separated string or a sequence. Defaults to none.
        tracer_provider: The tracer provider; defaults to the global one, looked up per
            request, so one configured after the app was built is used.
        meter_provider: The meter provider; defaults to the global one, likewise.
        first_byte_event: Add a ``http.response.first_byte`` event to the span when the
            response starts (the time to first byte). Defaults to False.

    Raises:
        ImportError: ``opentelemetry-api`` is not installed (the ``otel`` extra).
        ValueError: an ``excluded_urls`` entry is not a regular expression.
    """

    __slots__ = (
        "_active",
        "_duration",
        "_excluded",
        "_first_byte",
        "_meter_provider",
        "_tracer",
        "_tracer_provider",
        "app",
    )

    def __init__(
        self,
        app: ASGIApp,
        *,
        excluded_urls: str | Sequence[str] = (),
        tracer_provider: TracerProvider | None = None,
        meter_provider: MeterProvider | None = None,
        first_byte_event: bool = False,
    ) -> None:
        _require()
        from . import __version__

        self.app = app
        self._excluded = _excluded(excluded_urls)
        self._tracer_provider = tracer_provider
        self._meter_provider = meter_provider
        self._first_byte = bool(first_byte_event)
        # Proxies from the global providers follow a provider configured later.
        self._tracer = trace.get_tracer("middlewares", __version__, tracer_provider)
        meter = metrics.get_meter("middlewares", __version__, meter_provider)
        self._duration = meter.create_histogram(
            "http.server.request.duration",
            unit="s",
            description="Duration of HTTP server requests.",
            explicit_bucket_boundaries_advisory=_DURATION_BUCKETS,
        )
        self._active = _in_flight(meter_provider)
        meter.create_observable_up_down_counter(
            "http.server.active_requests",
            callbacks=[self._active.observe],
            unit="{request}",
            description="Number of active HTTP server requests.",
        )

    def _enabled(self) -> tuple[bool, bool]:
        """Whether spans and metrics go anywhere: a no-op provider (or none configured) costs
        nothing but this check."""
        tracer_provider = self._tracer_provider or _global(trace, "_TRACER_PROVIDER")
        meter_provider = self._meter_provider or _global(metrics._internal, "_METER_PROVIDER")
        # Exact types: an ABC isinstance check would cost more than the rest of this path.
        return (
            type(tracer_provider) not in _NO_TRACING,
            type(meter_provider) not in _NO_METRICS,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if (kind != "http" and kind != "websocket") or _ACTIVE_KEY in scope:
            await self.app(scope, receive, send)
            return
        tracing, measuring = self._enabled()
        if not (tracing or measuring) or (
            self._excluded and any(p.search(_full_url(scope)) for p in self._excluded)
        ):
            await self.app(scope, receive, send)
            return
        scope[_ACTIVE_KEY] = True
        await self._traced(scope, receive, send, tracing, measuring)

    async def _traced(
        self, scope: Scope, receive: Receive, send: Send, tracing: bool, measuring: bool
    ) -> None:
        original: str = scope.get("method", "GET")
        method = original.upper()
        start = time.perf_counter()
        span = token = None
        if tracing:
            parent = _parent(scope.get("headers", ()))
            span = self._tracer.start_span(
                method,
                context=parent,
                kind=SpanKind.SERVER,
                attributes=_attributes(scope, method, original),
            )
            token = _context.attach(trace.set_span_in_context(span, parent))
            span_context = span.get_span_context()
            if span_context.is_valid:
                scope[TRACE_ID_KEY] = format(span_context.trace_id, "032x")
        scheme = request_scheme(scope)
        metric_method = method if method in _KNOWN_METHODS else "_OTHER"
        active = (metric_method, scheme)
        if measuring:
            self._active.add(active, 1)
        status: int | None = None
        head = last = None  # the response start and the last message sent
        first_byte = self._first_byte and span is not None

        def send_with_status(message: Message) -> Any:
            nonlocal status, head, last
            last = message
            kind = message["type"]
            if kind == "http.response.start" or kind == "websocket.http.response.start":
                status = message["status"]
                head = message
                if first_byte:
                    span.add_event(_FIRST_BYTE_EVENT)  # type: ignore[union-attr]
            elif kind == "websocket.accept":
                status = 101
            elif kind == "websocket.close" and status is None:
                status = 403  # the server refuses the handshake
            return send(message)

        error: BaseException | None = None
        try:
            await self.app(scope, receive, send_with_status)
        except BaseException as raised:  # a cancellation (the client left) too
            error = raised
            raise
        finally:
            route = http_route(scope)
            ended: dict[str, Any] = {}
            if status is not None:
                ended["http.response.status_code"] = status
                if status >= 500:
                    ended["error.type"] = str(status)
            outcome = get_outcome(scope)
            if outcome is not None and outcome != "ok" and outcome != "limited":
                reason = _outcome_error(outcome, status, head, last)
                if reason is not None:
                    ended["error.type"] = reason
            if error is not None:
                ended["error.type"] = type(error).__qualname__
            if route is not None:
                ended["http.route"] = route
            if span is not None:
                _end_span(span, method, route, ended, error)
                _context.detach(token)  # type: ignore[arg-type]
            if measuring:
                self._active.add(active, -1)
                ended["http.request.method"] = metric_method
                ended["url.scheme"] = scheme
                version = scope.get("http_version")
                if version:
                    ended["network.protocol.version"] = version
                self._duration.record(time.perf_counter() - start, ended)


def _outcome_error(
    outcome: Outcome, status: int | None, head: Message | None, last: Message | None
) -> str | None:
    """``error.type`` for a request an inner layer reported ending badly (``timeout``,
    ``disconnect``, ``too_large``...), or None to keep what the response says.

    A complete 4xx or 5xx response (a guard's 504, 413 or 403) is judged by its status, as the
    semantic conventions judge any response: a 5xx is an error named by its code, a 4xx is
    not a server error. Anything else (a response cut short after a 200 started, or none at
    all) ended for the outcome's reason, which names the error.
    """
    if status is not None and status >= 400 and last is not None:
        trailers = head is not None and head.get("trailers", False)
        if ends_response(last, trailers):
            return None
    return outcome


def _end_span(
    span: Any, method: str, route: str | None, ended: dict[str, Any], error: BaseException | None
) -> None:
    if ended:
        span.set_attributes(ended)
    if route is not None:
        span.update_name(f"{method} {route}")
    if error is not None:
        # As the API's use_span does for a span started as current, but for a cancellation
        # (a BaseException) too: the request was cut short, not served.
        span.record_exception(error)
        span.set_status(Status(StatusCode.ERROR, f"{type(error).__name__}: {error}"))
    elif "error.type" in ended:
        span.set_status(Status(StatusCode.ERROR))
    span.end()
