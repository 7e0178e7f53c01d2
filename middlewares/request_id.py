"""Request ids in the de facto ``X-Request-ID`` header: generated, or accepted from a trusted
proxy after a charset and length check (RFC 9110 §5.5 field values), and exposed to logging."""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Awaitable, Callable, Iterable
from contextvars import ContextVar

from ._core.headers import is_token
from ._core.proxies import TrustedProxies
from ._types import ASGIApp, Message, RawHeaders, Receive, Scope, Send

__all__ = [
    "SCOPE_KEY",
    "RequestIDFilter",
    "RequestIDMiddleware",
    "get_request_id",
    "is_valid_request_id",
    "new_request_id",
    "request_id",
]

logger = logging.getLogger("middlewares.request_id")

#: The scope key holding the request's id, for code that has the scope but not the context.
SCOPE_KEY = "middlewares.request_id"

#: The running request's id; None outside a request handled by ``RequestIDMiddleware``.
request_id: ContextVar[str | None] = ContextVar("middlewares.request_id", default=None)

# Letters, digits and the punctuation of UUIDs, ULIDs, base64 and trace ids: nothing that can
# break a log line (CR, LF, quotes, spaces, %) or a header. 128 characters is ample for any
# id scheme and bounds what an untrusted client can put into every log record.
_VALID = re.compile(rb"[A-Za-z0-9._~:+/=-]{1,128}")
_VALID_TEXT = re.compile(r"[A-Za-z0-9._~:+/=-]{1,128}")
# RFC 9110 §5.5: a field value is visible ASCII and inner spaces/tabs, nothing else.
_FIELD_VALUE = re.compile(r"[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?")
_RESPONSE_STARTS = frozenset(
    {"http.response.start", "websocket.accept", "websocket.http.response.start"}
)
_SERVED = frozenset({"http", "websocket"})


def get_request_id() -> str | None:
    """Return the running request's id, or None outside a request."""
    return request_id.get()


def new_request_id() -> str:
    """Return 32 random hexadecimal digits (128 bits from the OS's CSPRNG), the shape of a
    dash-less UUID, so peers' UUID validators accept it."""
    return os.urandom(16).hex()


def is_valid_request_id(value: str) -> bool:
    """Return whether an incoming id may be used as is: 1 to 128 characters among letters,
    digits and ``._~:+/=-``."""
    return bool(_VALID_TEXT.fullmatch(value))


class RequestIDFilter(logging.Filter):
    """A logging filter that puts the running request's id on every record.

    Attach it to a handler (``handler.addFilter(RequestIDFilter())``) and use
    ``%(request_id)s`` in the format. It never drops a record.

    Args:
        name: Passed to ``logging.Filter``; records from other loggers still pass.
        attribute: The record attribute to set. Defaults to ``"request_id"``.
        default: The value outside a request. Defaults to ``"-"``.
    """

    def __init__(self, name: str = "", *, attribute: str = "request_id", default: str = "-"):
        super().__init__(name)
        if not attribute.isidentifier():
            raise ValueError(f"attribute must be a Python identifier, got {attribute!r}")
        self.attribute = attribute
        self.default = default

    def filter(self, record: logging.LogRecord) -> bool:
        value = request_id.get()
        setattr(record, self.attribute, self.default if value is None else value)
        return True


class RequestIDMiddleware:
    """Give every HTTP request and WebSocket connection an id, for logs and for the client.

    The id comes from the request's ``header_name`` when the client is trusted and the value
    passes ``validator``; otherwise it is generated, and an invalid incoming value is replaced
    (it is never logged: log injection). The id is exposed as ``request_id.get()`` /
    ``get_request_id()``, on log records through ``RequestIDFilter``, in
    ``scope["middlewares.request_id"]``, and in the response's ``header_name``, which replaces
    any the app set (never a second field).

    Args:
        app: The ASGI application to wrap.
        header_name: The request and response header. Defaults to ``"X-Request-ID"``.
        generator: Makes a new id; must return a valid header value. Defaults to
            ``new_request_id`` (32 random hex digits).
        validator: Decides whether an incoming id is used, given the header value decoded as
            Latin-1. Defaults to ``is_valid_request_id`` (1-128 letters, digits, ``._~:+/=-``).
        trusted_proxies: Client addresses (``"10.0.0.7"``) or networks (``"10.0.0.0/8"``)
            whose incoming ids are considered; ``None`` (the default) considers every
            client's, ``[]`` none (always generate).
        update_request_header: Also write the id into the request's ``header_name`` when it
            was generated, so code reading the request header never sees a rejected value.
            Defaults to True.
        log_exceptions: Log an exception escaping the app, with its traceback, on the
            ``middlewares.request_id`` logger before re-raising it: the traceback the server
            logs runs outside the request and carries no id. Defaults to False.

    Raises:
        ValueError: ``header_name`` is not a token, a trusted proxy is not an address or
            network, or ``generator`` returns an invalid header value.
        TypeError: ``generator`` or ``validator`` is not callable.
    """

    __slots__ = (
        "_default_validator",
        "_generator",
        "_log_exceptions",
        "_name",
        "_trust",
        "_update",
        "_validator",
        "app",
    )

    def __init__(
        self,
        app: ASGIApp,
        *,
        header_name: str = "X-Request-ID",
        generator: Callable[[], str] = new_request_id,
        validator: Callable[[str], bool] = is_valid_request_id,
        trusted_proxies: Iterable[str] | None = None,
        update_request_header: bool = True,
        log_exceptions: bool = False,
    ) -> None:
        if not isinstance(header_name, str) or not is_token(header_name):
            raise ValueError(f"header_name must be an HTTP token, got {header_name!r}")
        if not callable(generator):
            raise TypeError(f"generator must be a callable returning a string, got {generator!r}")
        if not callable(validator):
            raise TypeError(f"validator must be a callable str -> bool, got {validator!r}")
        sample = generator()
        if not isinstance(sample, str) or not _FIELD_VALUE.fullmatch(sample):
            raise ValueError(
                f"generator must return a non-empty header value of visible ASCII, got {sample!r}"
            )
        self.app = app
        self._name = header_name.lower().encode("ascii")
        self._generator = generator
        self._validator = validator
        self._default_validator = validator is is_valid_request_id
        self._trust = (
            None
            if trusted_proxies is None
            else TrustedProxies(trusted_proxies, argument="trusted_proxies")
        )
        self._update = update_request_header
        self._log_exceptions = log_exceptions

    def choose(self, raw: bytes | None) -> str:
        """Return the incoming id ``raw`` when it passes the validator, else a new id."""
        if raw is not None:
            if self._default_validator:
                if _VALID.fullmatch(raw):
                    return raw.decode("ascii")
            elif self._validator(raw.decode("latin-1")):
                return raw.decode("latin-1")
        ident = self._generator()
        if raw is not None:
            # The rejected value is untrusted: only its size is logged (log injection).
            logger.info(
                "replaced an invalid incoming %s header (%d bytes) with %s",
                self._name.decode("ascii"),
                len(raw),
                ident,
            )
        return ident

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in _SERVED:
            await self.app(scope, receive, send)
            return
        name = self._name
        headers = scope["headers"]
        raw: bytes | None = None
        scanned = self._trust is None or self._trust.trusts_peer(scope)
        if scanned:
            for key, value in headers:
                if key == name or key.lower() == name:
                    raw = bytes(value)
                    break
        ident = self.choose(raw)
        field = (name, ident.encode("latin-1"))
        scope[SCOPE_KEY] = ident
        if self._update and raw != field[1]:
            # Nothing to replace when the scan found no field: a plain copy is enough.
            scope["headers"] = (
                [*headers, field] if scanned and raw is None else _with_field(headers, field)
            )
        token = request_id.set(ident)

        def send_with_request_id(message: Message) -> Awaitable[None]:
            if message["type"] in _RESPONSE_STARTS:
                message = {**message, "headers": _with_field(message.get("headers", ()), field)}
            return send(message)

        try:
            await self.app(scope, receive, send_with_request_id)
        except Exception:
            if self._log_exceptions:
                # Still inside the request: RequestIDFilter puts the id on this record too.
                logger.exception(
                    "unhandled exception in %s %s (request id %s)",
                    scope.get("method", "WEBSOCKET" if scope["type"] == "websocket" else "GET"),
                    scope.get("path", ""),
                    ident,
                )
            raise
        finally:
            request_id.reset(token)


def _with_field(headers: Iterable[tuple[bytes, bytes]], field: tuple[bytes, bytes]) -> RawHeaders:
    """Return a new header list with every field of that name replaced by ``field``, last.

    The common case (no such field yet) costs one scan and one copy.
    """
    name = field[0]
    for key, _ in headers:
        if key.lower() == name:
            return [*[(k, v) for k, v in headers if k.lower() != name], field]
    return [*headers, field]
