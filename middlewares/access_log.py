"""Access logs: one structured record per request (JSON, logfmt, or Apache's combined log
format, https://httpd.apache.org/docs/current/logs.html#combined), safe to write as one line."""

from __future__ import annotations

import functools
import json
import logging
import os
import random as _random
import re
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from http import HTTPStatus
from typing import Any, Literal
from urllib.parse import unquote_plus

from ._core.outcome import ends_response, get_outcome, request_outcome
from ._core.paths import PathMatcher, PathPattern, route_template
from ._core.proxies import client_host
from ._types import ASGIApp, Message, Receive, Scope, Send
from .timing import RequestTiming
from .timing import route_template as mounted_route_template

__all__ = [
    "DEFAULT_REDACT_HEADERS",
    "DEFAULT_REDACT_QUERY_PARAMS",
    "REDACTED",
    "STATE_KEY",
    "TRACE_ID_KEY",
    "AccessLogMiddleware",
    "AccessRecord",
    "build_record",
    "format_combined",
    "format_json",
    "format_logfmt",
    "record_from_timing",
    "redact_query",
    "request_outcome",
]

#: A record: field name to value, in a stable order; None values are left out.
AccessRecord = dict[str, Any]
Formatter = Callable[[AccessRecord], "str | None"]

#: What replaces a redacted value (the OpenTelemetry semantic conventions' word for it).
REDACTED = "REDACTED"
#: Query parameters whose values are redacted: a parameter is redacted when its lower-cased
#: name contains one of these (``access_token``, ``client_secret``, ``X-Amz-Signature``).
DEFAULT_REDACT_QUERY_PARAMS = (
    "token",
    "password",
    "passwd",
    "secret",
    "api_key",
    "apikey",
    "signature",
    "session",
    "csrf",
    "credential",
)
#: Headers whose values are redacted when ``request_headers`` or ``response_headers`` asks for
#: them: credentials, and the cookies that carry session and CSRF tokens.
DEFAULT_REDACT_HEADERS = (
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
    "x-api-key",
    "x-csrf-token",
    "x-csrftoken",
    "x-xsrf-token",
)
#: The scope key under which ``OpenTelemetryMiddleware`` leaves the request's trace id.
TRACE_ID_KEY = "middlewares.trace_id"
_REQUEST_ID_KEY = "middlewares.request_id"  # RequestIDMiddleware's SCOPE_KEY
#: ``scope["state"]`` key of a mapping of extra fields the app adds to its request's record
#: (Starlette: ``request.state.access_log = {"user_id": 7}``).
STATE_KEY = "access_log"
# Bounds what one client header can put into every record.
_MAX_FIELD = 1024
# Bytes kept as they are in a logged path or query: printable ASCII but space, quote and
# backslash; everything else is percent-encoded, so the text is what a client sends on the wire.
_UNSAFE_BYTES = re.compile(rb"[^\x21\x23-\x5b\x5d-\x7e]")
_COMBINED_UNSAFE = re.compile(r'["\\\x00-\x1f\x7f-\U0010ffff]')
_LOGFMT_KEY = re.compile(r"[^A-Za-z0-9_.-]")
_LOGFMT_PLAIN = re.compile(r"[\x21\x23-\x3c\x3e-\x5b\x5d-\x7e]+")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
# LogRecord's own attributes: an ``extra`` field with one of these names makes logging raise.
_RESERVED = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}

_JSON = json.JSONEncoder(ensure_ascii=True, default=str)

logger = logging.getLogger("middlewares.access_log")


def _percent_unsafe(raw: bytes) -> str:
    return _UNSAFE_BYTES.sub(lambda m: b"%%%02X" % m.group()[0], raw).decode("ascii")


def redact_query(query: bytes, secrets: Iterable[str] = DEFAULT_REDACT_QUERY_PARAMS) -> str:
    """Return a query string safe to log: the value of every parameter whose name (decoded,
    lower-cased) contains one of ``secrets`` becomes ``REDACTED``, and every byte outside
    printable ASCII is percent-encoded."""
    if not query:
        return ""
    secrets = tuple(secrets)
    text = query.decode("latin-1").lower()
    if "%" not in text and "+" not in text and not any(secret in text for secret in secrets):
        return _percent_unsafe(query)  # no name can hold a secret: nothing to split
    parts = query.split(b"&")
    for index, part in enumerate(parts):
        name, equals, _ = part.partition(b"=")
        if equals and secrets:
            decoded = unquote_plus(name.decode("latin-1")).lower()
            if any(secret in decoded for secret in secrets):
                parts[index] = name + b"=" + REDACTED.encode("ascii")
    return _percent_unsafe(b"&".join(parts))


def _redact_url(value: str, secrets: tuple[str, ...]) -> str:
    """A URL (a ``Referer``) with its query redacted and its fragment dropped."""
    url, _, _ = value.partition("#")
    base, question, query = url.partition("?")
    if not question:
        return _percent_unsafe(base.encode("latin-1"))
    return (
        _percent_unsafe(base.encode("latin-1"))
        + "?"
        + redact_query(query.encode("latin-1"), secrets)
    )


def _header(headers: Iterable[tuple[bytes, bytes]], name: bytes) -> str | None:
    for key, value in headers:
        if key == name:
            return value[:_MAX_FIELD].decode("latin-1")
    return None


@functools.lru_cache(maxsize=4)
def _utc_second(second: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))


def _wall_time(seconds: float) -> str:
    """RFC 3339 UTC with milliseconds (the second's text is formatted once per second)."""
    return f"{_utc_second(int(seconds))}.{int(seconds * 1000) % 1000:03d}Z"


def build_record(
    scope: Scope,
    *,
    status: int,
    outcome: str,
    started: float | None = None,
    ttfb: float | None = None,
    duration: float | None = None,
    bytes_received: int | None = None,
    bytes_sent: int | None = None,
    raw_path: bytes | None = None,
    root_path: str | None = None,
    redact_query_params: tuple[str, ...] = DEFAULT_REDACT_QUERY_PARAMS,
    headers: Mapping[str, str | None] | None = None,
) -> AccessRecord:
    """Build the access record of one request: the fields documented in docs/access-log.md.

    The one place records are built, for ``AccessLogMiddleware`` and for timing hooks (see
    ``record_from_timing``). Durations are in seconds and logged in milliseconds; ``raw_path``
    defaults to the scope's; ``headers`` are extra fields, already redacted.
    """
    websocket = scope.get("type") == "websocket"
    if raw_path is None:
        raw_path = scope.get("raw_path") or str(scope.get("path", "")).encode("utf-8")
    request_headers = scope.get("headers", ())
    referer = _header(request_headers, b"referer")
    root = scope.get("root_path", "") if root_path is None else root_path
    template = mounted_route_template(scope, root) or route_template(scope)
    version = scope.get("http_version")
    record: AccessRecord = {
        "time": None if started is None else _wall_time(started),
        "method": "WEBSOCKET" if websocket else str(scope.get("method", "")),
        "path": _percent_unsafe(bytes(raw_path).partition(b"?")[0]),
        "query": redact_query(scope.get("query_string", b""), redact_query_params) or None,
        "route": template,
        "protocol": None if version is None else f"HTTP/{version}",
        "status": status,
        "outcome": outcome,
        "ttfb_ms": None if ttfb is None else round(ttfb * 1000.0, 3),
        "duration_ms": None if duration is None else round(duration * 1000.0, 3),
        "bytes_received": bytes_received,
        "bytes_sent": bytes_sent,
        "client": client_host(scope),
        "user_agent": _header(request_headers, b"user-agent"),
        "referer": None if referer is None else _redact_url(referer, redact_query_params),
        "request_id": scope.get(_REQUEST_ID_KEY),
        "trace_id": scope.get(TRACE_ID_KEY),
    }
    if headers:
        record.update(headers)
    state = scope.get("state")
    extra = state.get(STATE_KEY) if isinstance(state, dict) else None
    if isinstance(extra, dict):
        for key, value in extra.items():
            record.setdefault(str(key), value)  # the app's fields never replace the measured ones
    return {key: value for key, value in record.items() if value is not None}


def record_from_timing(timing: RequestTiming) -> AccessRecord:
    """The access record of a request reported to a ``TimingMiddleware`` hook: what the hook
    knows (no byte counts, no arrival time), built by the same ``build_record``."""
    return build_record(
        timing.scope,
        status=timing.status,
        outcome=timing.outcome,
        ttfb=timing.ttfb,
        duration=timing.ttlb if timing.ttlb is not None else timing.duration,
        raw_path=timing.scope.get("raw_path") or timing.raw_path.encode("utf-8"),
        root_path=timing.root_path,
    )


def format_json(record: AccessRecord) -> str:
    """One JSON object; control characters, quotes and non-ASCII are escaped (one line)."""
    return _JSON.encode(record)


def _logfmt_value(value: object) -> str:
    if value is True or value is False:
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    text = str(value)
    if _LOGFMT_PLAIN.fullmatch(text):
        return text
    return json.dumps(text, ensure_ascii=True)  # quoted, with \n, \" and \u001b escapes


def format_logfmt(record: AccessRecord) -> str:
    """``key=value`` pairs; values with spaces, quotes, ``=`` or control characters are quoted
    and escaped (one line)."""
    return " ".join(
        f"{_LOGFMT_KEY.sub('_', str(key)) or '_'}={_logfmt_value(value)}"
        for key, value in record.items()
    )


def _apache_char(match: re.Match[str]) -> str:
    char = match.group()
    if char in '"\\':
        return "\\" + char
    code = ord(char)
    return f"\\x{code:02x}" if code < 256 else f"\\u{code:04x}"


def _apache_escape(text: str) -> str:
    # Apache's ap_escape_logitem: quote and backslash escaped, other non-printables as \xhh.
    return _COMBINED_UNSAFE.sub(_apache_char, text)


def _apache_time(record: AccessRecord) -> str:
    """``[30/Nov/2026:05:36:22 +0000]`` from the record's ``time``, or ``-``."""
    when = record.get("time")
    if isinstance(when, str) and len(when) >= 19:  # 2026-11-30T05:36:22.123Z
        month = _MONTHS[int(when[5:7]) - 1]
        return f"[{when[8:10]}/{month}/{when[0:4]}:{when[11:19]} +0000]"
    return "-"


def _request_line(record: AccessRecord, query: bool = True) -> str:
    target = str(record.get("path", "-"))
    if query and "query" in record:
        target += "?" + str(record["query"])
    return f"{record.get('method', '-')} {target} {record.get('protocol', 'HTTP/1.1')}"


def format_combined(record: AccessRecord) -> str:
    """Apache's combined log format, ``%h %l %u %t "%r" %>s %b "%{Referer}i" "%{User-Agent}i"``,
    in UTC; ``-`` for what is unknown."""
    return (
        f"{_apache_escape(str(record.get('client', '-')))} - - {_apache_time(record)}"
        f' "{_apache_escape(_request_line(record))}" {record.get("status", "-")}'
        f" {record.get('bytes_sent') or '-'}"
        f' "{_apache_escape(str(record.get("referer", "-")))}"'
        f' "{_apache_escape(str(record.get("user_agent", "-")))}"'
    )


def _phrase(record: AccessRecord) -> str:
    try:
        return HTTPStatus(record.get("status", 0)).phrase
    except ValueError:
        return "-"


def _seconds(record: AccessRecord) -> float:
    return float(record.get("duration_ms", 0.0)) / 1000.0


# gunicorn's access-log atoms, as asgi-logger takes them, over the record's fields.
_ATOMS: dict[str, Callable[[AccessRecord], object]] = {
    "h": lambda r: r.get("client", "-"),
    "client_addr": lambda r: r.get("client", "-"),
    "l": lambda r: "-",
    "u": lambda r: "-",
    "t": _apache_time,
    "r": lambda r: _request_line(r, query=False),
    "R": _request_line,
    "request_line": _request_line,
    "m": lambda r: r.get("method", "-"),
    "U": lambda r: r.get("path", "-"),
    "q": lambda r: r.get("query", ""),
    "H": lambda r: r.get("protocol", "-"),
    "s": lambda r: r.get("status", "-"),
    "status_code": lambda r: f"{r.get('status', '-')} {_phrase(r)}",
    "st": _phrase,
    "B": lambda r: r.get("bytes_sent", 0),
    "b": lambda r: r.get("bytes_sent") or "-",
    "f": lambda r: r.get("referer", "-"),
    "a": lambda r: r.get("user_agent", "-"),
    "T": lambda r: int(_seconds(r)),
    "M": lambda r: int(_seconds(r) * 1_000),
    "D": lambda r: int(_seconds(r) * 1_000_000),
    "L": lambda r: f"{_seconds(r):.6f}",
    "p": lambda r: f"<{os.getpid()}>",
}
_ATOM = re.compile(r"%\(([^)]*)\)")


class _Atoms:
    """The mapping a ``%(atom)s`` template is formatted with; every text is escaped."""

    __slots__ = ("_record",)

    def __init__(self, record: AccessRecord) -> None:
        self._record = record

    def __getitem__(self, key: str) -> object:
        if key.startswith("{") and key[-2:-1] == "}":
            name, kind = key[1:-2].lower(), key[-1]
            prefix = {"i": "request.", "o": "response."}.get(kind)
            # {VAR}e, the process environment, is never logged: it holds the app's secrets.
            value: object = "-" if prefix is None else self._record.get(prefix + name, "-")
        else:
            atom = _ATOMS.get(key)
            value = "-" if atom is None else atom(self._record)
        return _apache_escape(value) if isinstance(value, str) else value


def _template_formatter(template: str) -> tuple[Formatter, list[str], list[str]]:
    """A formatter for an asgi-logger/gunicorn ``%(atom)s`` template, and the request and
    response headers its ``%({name}i)s`` and ``%({name}o)s`` atoms need."""
    request: list[str] = []
    response: list[str] = []
    for atom in _ATOM.findall(template):
        if atom.startswith("{") and atom[-2:] in ("}i", "}o"):
            (request if atom[-1] == "i" else response).append(atom[1:-2])

    def format_template(record: AccessRecord) -> str:
        return template % _Atoms(record)

    sample = {"time": "2026-01-01T00:00:00.000Z", "status": 200, "duration_ms": 1.0}
    try:
        format_template(sample)
    except (ValueError, TypeError, KeyError) as error:
        raise ValueError(
            f"format is not a valid %(atom)s template: {template!r} ({error})"
        ) from None
    return format_template, request, response


_FORMATS: dict[str, Formatter] = {
    "json": format_json,
    "logfmt": format_logfmt,
    "combined": format_combined,
}


def _header_names(names: Iterable[str], argument: str) -> tuple[bytes, ...]:
    if isinstance(names, (str, bytes)):
        raise TypeError(f"{argument} must be a list of header names, got the string {names!r}")
    result = []
    for name in names:
        if not isinstance(name, str) or not name or not name.isascii() or " " in name:
            raise ValueError(f"{argument} must hold header names, got {name!r}")
        result.append(name.lower().encode("ascii"))
    return tuple(result)


class AccessLogMiddleware:
    """Write one access record per HTTP request and WebSocket connection to a ``logging``
    logger, once the response is complete, the client has gone, or the app has raised.

    Each record has the method, the path as the client sent it (``raw_path``), the redacted
    query, the route template when the framework sets one, the status and outcome (``ok``,
    ``error``, ``disconnect`` with status 499, or what an inner guard reported: ``timeout``,
    ``limited``, ``too_large``, ``forbidden``), time to first byte and duration from a
    monotonic clock, the body bytes actually received and sent, the client address from the
    trusted-proxy model, user agent, referer, request id and trace id, and the fields the app
    put in ``scope["state"]["access_log"]``. Bodies are never read into the record, messages
    are forwarded unchanged, and nothing the logger does can fail the request. The record is
    logged as the formatted message and as ``extra`` fields, for structured formatters.

    Args:
        app: The ASGI application to wrap.
        format: ``"json"`` (the default), ``"logfmt"``, ``"combined"`` (Apache), an
            asgi-logger/gunicorn template of ``%(atom)s`` atoms (``%(h)s "%(r)s" %(s)s %(D)s``,
            ``%({user-agent}i)s``; every value escaped, headers redacted, ``%({VAR}e)s``
            always ``-``), or a callable ``record -> str | None``: its text is logged; None
            logs nothing (a hook that sends records elsewhere).
        logger: The logger, or its name. Defaults to ``"middlewares.access"``, which prints
            the bare line on stdout at INFO unless logging was configured for it.
        level: The level records are logged at. Defaults to ``logging.INFO``.
        exclude_paths: Paths (see ``PathMatcher``: exact, ``/prefix/*``, templates, regexes)
            whose successful requests (outcome ``ok``, status below 400) are not logged; their
            failures still are.
        sample_rate: The fraction of successful requests logged, from 0 to 1; failures are
            always logged. Defaults to 1.
        request_headers: Request headers to add as ``request.<name>`` fields.
        response_headers: Response headers to add as ``response.<name>`` fields.
        redact_headers: Headers logged as ``REDACTED`` when asked for. Defaults to
            ``DEFAULT_REDACT_HEADERS`` (``Authorization``, ``Cookie``, ``Set-Cookie``...).
        redact_query_params: Query parameters (and those of the ``Referer``) whose values are
            logged as ``REDACTED``: a name containing any of these, ignoring case. Defaults to
            ``DEFAULT_REDACT_QUERY_PARAMS`` (``token``, ``password``, ``secret``, ``api_key``...).
        clock: Monotonic clock in seconds; tests inject a fake one. Defaults to
            ``time.perf_counter``.
        random: Returns a float in [0, 1) for sampling. Defaults to ``random.random``.

    Raises:
        ValueError: an unknown ``format`` or a template that does not format, a
            ``sample_rate`` outside [0, 1], a bad header name or path pattern.
        TypeError: a ``logger``, ``clock`` or ``random`` of the wrong type.
    """

    __slots__ = (
        "_clock",
        "_exclude",
        "_format",
        "_level",
        "_logger",
        "_random",
        "_redact",
        "_redact_params",
        "_request_headers",
        "_response_headers",
        "_sample_rate",
        "app",
    )

    def __init__(
        self,
        app: ASGIApp,
        *,
        format: Literal["json", "logfmt", "combined"] | Formatter | None = "json",
        logger: logging.Logger | str | None = None,
        level: int = logging.INFO,
        exclude_paths: Iterable[PathPattern] = (),
        sample_rate: float = 1.0,
        request_headers: Iterable[str] = (),
        response_headers: Iterable[str] = (),
        redact_headers: Iterable[str] = DEFAULT_REDACT_HEADERS,
        redact_query_params: Iterable[str] = DEFAULT_REDACT_QUERY_PARAMS,
        clock: Callable[[], float] = time.perf_counter,
        random: Callable[[], float] = _random.random,
    ) -> None:
        if format is None:
            format = "json"
        if callable(format):
            self._format: Formatter = format
        elif format in _FORMATS:
            self._format = _FORMATS[format]
        elif isinstance(format, str) and "%(" in format:
            self._format, wanted, sent = _template_formatter(format)
            request_headers = [*request_headers, *wanted]
            response_headers = [*response_headers, *sent]
        else:
            raise ValueError(
                f"format must be 'json', 'logfmt', 'combined', a %(atom)s template or a"
                f" callable, got {format!r}"
            )
        if logger is None:
            logger = _default_logger()
        if isinstance(logger, str):
            logger = logging.getLogger(logger)
        if not isinstance(logger, logging.Logger):
            raise TypeError(f"logger must be a logging.Logger or a name, got {logger!r}")
        if isinstance(sample_rate, bool) or not isinstance(sample_rate, (int, float)):
            raise TypeError(f"sample_rate must be a number from 0 to 1, got {sample_rate!r}")
        if not 0.0 <= sample_rate <= 1.0:
            raise ValueError(f"sample_rate must be between 0 and 1, got {sample_rate!r}")
        if not callable(clock) or not callable(random):
            raise TypeError("clock and random must be callables returning floats")
        if isinstance(redact_query_params, str):
            raise TypeError(
                f"redact_query_params must be a list of names, got the string"
                f" {redact_query_params!r}"
            )
        if logging.getLogger("uvicorn.access").handlers:
            # uvicorn configured its own access logger, so it logs each request as well.
            logging.getLogger(__name__).warning(
                "uvicorn's access log is on too, so every request is logged twice: run uvicorn"
                " with --no-access-log (uvicorn.run(..., access_log=False))"
            )
        self.app = app
        self._logger = logger
        self._level = level
        matcher = PathMatcher(exclude_paths)
        self._exclude = matcher if matcher else None
        self._sample_rate = float(sample_rate)
        self._request_headers = _header_names(request_headers, "request_headers")
        self._response_headers = _header_names(response_headers, "response_headers")
        self._redact = frozenset(_header_names(redact_headers, "redact_headers"))
        self._redact_params = tuple(name.lower() for name in redact_query_params)
        self._clock = clock
        self._random = random

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if (kind != "http" and kind != "websocket") or not self._logger.isEnabledFor(self._level):
            await self.app(scope, receive, send)
            return
        clock = self._clock
        epoch = time.time()
        start = clock()
        raw_path = scope.get("raw_path")
        root_path: str = scope.get("root_path", "")
        excluded = self._exclude is not None and self._exclude.matches(scope)
        http = kind == "http"
        status: int | None = None
        first: float | None = None
        last: float | None = None
        received = sent = 0
        complete = disconnected = trailers = False
        response_headers: Any = ()

        async def receive_counting() -> Message:
            nonlocal received, disconnected, complete
            message = await receive()
            kind = message["type"]
            if kind == "http.request":
                received += len(message.get("body", b""))
            elif kind == "websocket.receive":
                received += _ws_size(message)
            elif kind == "http.disconnect" or kind == "websocket.disconnect":
                if http:
                    disconnected = not complete
                else:
                    complete = True
            return message

        async def send_counting(message: Message) -> None:
            nonlocal status, first, last, sent, complete, disconnected, response_headers
            nonlocal trailers
            kind = message["type"]
            if kind == "http.response.body" or kind == "websocket.http.response.body":
                sent += len(message.get("body", b""))
            elif kind == "http.response.start" or kind == "websocket.http.response.start":
                first = clock()
                status = message["status"]
                response_headers = message.get("headers", ())
                trailers = message.get("trailers", False)
            elif kind == "websocket.send":
                sent += _ws_size(message)
            elif kind == "websocket.accept":
                first = clock()
                status = 101
                response_headers = message.get("headers", ())
            elif kind == "websocket.close":
                if status is None:
                    status = 403  # the server refuses the handshake (ASGI websocket spec)
            elif kind == "http.response.zerocopysend":
                # Zero Copy Send extension: without a count the file is sent to its end, a
                # size not known here.
                sent += message.get("count") or 0
            try:
                await send(message)
            except BaseException:
                disconnected = True
                raise
            if ends_response(message, trailers):
                last = clock()
                complete = True

        error: BaseException | None = None
        try:
            await self.app(scope, receive_counting, send_counting)
        except BaseException as raised:
            error = raised
            raise
        finally:
            end = clock()
            try:
                final_status, outcome = request_outcome(
                    status,
                    complete=complete,
                    error=error,
                    disconnected=disconnected,
                    recorded=get_outcome(scope),
                )
                success = outcome == "ok" and final_status < 400
                if not success or (
                    not excluded
                    and (self._sample_rate >= 1.0 or self._random() < self._sample_rate)
                ):
                    headers = self._header_fields(scope["headers"], response_headers)
                    record = build_record(
                        scope,
                        status=final_status,
                        outcome=outcome,
                        started=epoch,
                        ttfb=None if first is None else first - start,
                        duration=(end if last is None else last) - start,
                        bytes_received=received,
                        # RFC 9110 §9.3.2: the server sends no content for HEAD, whatever
                        # the app passed it (Starlette passes the GET body).
                        bytes_sent=0 if scope.get("method") == "HEAD" else sent,
                        raw_path=raw_path,
                        root_path=root_path,
                        redact_query_params=self._redact_params,
                        headers=headers,
                    )
                    self._write(record)
            except Exception:
                logger.exception("the access log failed; the response was not affected")

    def _header_fields(
        self, request: Iterable[tuple[bytes, bytes]], response: Iterable[tuple[bytes, bytes]]
    ) -> dict[str, str | None] | None:
        if not self._request_headers and not self._response_headers:
            return None
        fields: dict[str, str | None] = {}
        for prefix, names, headers in (
            ("request.", self._request_headers, request),
            ("response.", self._response_headers, response),
        ):
            for name in names:
                value = _header(headers, name)
                if value is not None and name in self._redact:
                    value = REDACTED
                fields[prefix + name.decode("ascii")] = value
        return fields

    def _write(self, record: AccessRecord) -> None:
        text = self._format(record)
        if text is None:
            return
        if not _RESERVED.isdisjoint(record):  # an app field named like a LogRecord attribute
            record = {key: value for key, value in record.items() if key not in _RESERVED}
        # Logger.log without findCaller (the caller would be this module, which says nothing)
        # and with the fields set in one update (makeRecord checks and sets them one by one).
        log = self._logger
        entry = logging.getLogRecordFactory()(log.name, self._level, "", 0, text, (), None)
        entry.__dict__.update(record)
        log.handle(entry)


def _default_logger() -> logging.Logger:
    """``middlewares.access``; when logging was not configured for it (no handler, no level),
    it prints the bare line on stdout, as uvicorn sets up ``uvicorn.access``: otherwise INFO
    records would be dropped by the root logger's default WARNING level."""
    log = logging.getLogger("middlewares.access")
    if not log.handlers and log.level == logging.NOTSET:
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(logging.Formatter("%(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        log.propagate = False
    return log


def _ws_size(message: Message) -> int:
    data = message.get("bytes")
    if data is not None:
        return len(data)
    text = message.get("text")
    return len(text.encode("utf-8")) if text is not None else 0
