"""Test helpers: drive an ASGI app in-process and check it against the ASGI 3 specification.

``run_asgi`` plays the server: it builds the ``receive`` side from the request you describe,
records every message the app sends, and (by default) wraps the app in ``ASGIValidator`` so that
any protocol violation fails the test with a message naming what was expected.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import anyio

from ._core.headers import get_all, get_header
from ._types import ASGIApp, Message, RawHeaders, Receive, Scope, Send

__all__ = [
    "ASGIProtocolError",
    "ASGIValidator",
    "Recorded",
    "http_scope",
    "run_asgi",
    "websocket_scope",
]

HeaderInput = Mapping[str, str] | Iterable[tuple[str | bytes, str | bytes]]


class ASGIProtocolError(RuntimeError):
    """An ASGI application (or middleware) broke the ASGI 3 message protocol."""


def _encode_headers(headers: HeaderInput) -> RawHeaders:
    pairs = headers.items() if isinstance(headers, Mapping) else headers
    return [
        (
            (k.encode("latin-1") if isinstance(k, str) else k).lower(),
            v.encode("latin-1") if isinstance(v, str) else v,
        )
        for k, v in pairs
    ]


def http_scope(
    method: str = "GET",
    path: str = "/",
    *,
    headers: HeaderInput = (),
    query_string: bytes = b"",
    scheme: str = "http",
    root_path: str = "",
    http_version: str = "1.1",
    client: tuple[str, int] | None = ("127.0.0.1", 50000),
    server: tuple[str, int | None] | None = ("testserver", 80),
    extensions: dict[str, Any] | None = None,
) -> Scope:
    """Build an HTTP connection scope. String headers are Latin-1 encoded, names lower-cased."""
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": http_version,
        "method": method.upper(),
        "scheme": scheme,
        "path": root_path + path,
        "raw_path": (root_path + path).encode("utf-8"),
        "query_string": query_string,
        "root_path": root_path,
        "headers": _encode_headers(headers),
        "client": client,
        "server": server,
        "state": {},
        "extensions": {} if extensions is None else extensions,
    }


def websocket_scope(
    path: str = "/",
    *,
    headers: HeaderInput = (),
    subprotocols: Sequence[str] = (),
    scheme: str = "ws",
    root_path: str = "",
    client: tuple[str, int] | None = ("127.0.0.1", 50000),
    server: tuple[str, int | None] | None = ("testserver", 80),
    extensions: dict[str, Any] | None = None,
) -> Scope:
    """Build a WebSocket connection scope."""
    return {
        "type": "websocket",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "scheme": scheme,
        "path": root_path + path,
        "raw_path": (root_path + path).encode("utf-8"),
        "query_string": b"",
        "root_path": root_path,
        "headers": _encode_headers(headers),
        "client": client,
        "server": server,
        "subprotocols": list(subprotocols),
        "state": {},
        "extensions": {} if extensions is None else extensions,
    }


@dataclass
class Recorded:
    """Everything an app sent for one connection, in order."""

    messages: list[Message] = field(default_factory=list)

    def of_type(self, *types: str) -> list[Message]:
        """The sent messages whose ``type`` is one of ``types``."""
        return [m for m in self.messages if m["type"] in types]

    @property
    def start(self) -> Message:
        """The ``http.response.start`` (or WebSocket denial start) message."""
        starts = self.of_type("http.response.start", "websocket.http.response.start")
        if not starts:
            raise AssertionError(f"no response start among {[m['type'] for m in self.messages]}")
        return starts[0]

    @property
    def status(self) -> int:
        """The response status code."""
        return int(self.start["status"])

    @property
    def headers(self) -> RawHeaders:
        """The response headers, as raw pairs."""
        return [(bytes(k), bytes(v)) for k, v in self.start.get("headers", ())]

    def header(self, name: str) -> str | None:
        """The first value of response header ``name`` (any case), decoded as Latin-1."""
        value = get_header(self.headers, name.lower().encode("latin-1"))
        return None if value is None else value.decode("latin-1")

    def header_all(self, name: str) -> list[str]:
        """Every value of response header ``name``, decoded as Latin-1."""
        return [v.decode("latin-1") for v in get_all(self.headers, name.lower().encode("latin-1"))]

    @property
    def body_chunks(self) -> list[bytes]:
        """The body of each body message, empty ones included."""
        return [
            bytes(m.get("body", b""))
            for m in self.of_type("http.response.body", "websocket.http.response.body")
        ]

    @property
    def body(self) -> bytes:
        """The whole response body."""
        return b"".join(self.body_chunks)


async def run_asgi(
    app: ASGIApp,
    scope: Scope | None = None,
    *,
    body: bytes | Iterable[bytes] = b"",
    receive: Receive | None = None,
    websocket_messages: Iterable[Message] = (),
    validate: bool = True,
) -> Recorded:
    """Run ``app`` for one connection as a server would, and record what it sends.

    For HTTP, ``body`` (bytes, or an iterable of chunks sent as separate ``http.request``
    messages) is delivered first; afterwards ``receive`` blocks until the response is complete
    and then reports ``http.disconnect``, as a server does. For WebSockets, ``websocket.connect``
    is delivered, then ``websocket_messages``, then ``receive`` blocks until the app closes.
    Pass ``receive`` to script the client yourself (for example to disconnect early).

    Args:
        app: The application under test.
        scope: The connection scope; ``http_scope()`` when omitted.
        body: The request body, for HTTP.
        receive: A replacement for the generated ``receive`` callable.
        websocket_messages: Client messages delivered after ``websocket.connect``.
        validate: Wrap ``app`` in ``ASGIValidator`` so a protocol violation raises.
    """
    scope = http_scope() if scope is None else scope
    recorded = Recorded()
    finished = anyio.Event()
    if receive is None:
        if scope["type"] == "http":
            chunks = [body] if isinstance(body, (bytes, bytearray)) else list(body)
            pending: list[Message] = [
                {"type": "http.request", "body": bytes(c), "more_body": i < len(chunks) - 1}
                for i, c in enumerate(chunks or [b""])
            ]
            last: Message = {"type": "http.disconnect"}
        else:
            pending = [{"type": "websocket.connect"}, *websocket_messages]
            last = {"type": "websocket.disconnect", "code": 1000}

        async def receive_scripted() -> Message:
            if pending:
                return pending.pop(0)
            await finished.wait()
            return last

        receive = receive_scripted

    async def send(message: Message) -> None:
        recorded.messages.append(message)
        if _is_final(message):
            finished.set()

    await (ASGIValidator(app) if validate else app)(scope, receive, send)
    return recorded


def _is_final(message: Message) -> bool:
    kind = message["type"]
    if kind in ("websocket.close", "http.response.pathsend"):
        return True
    if kind == "http.response.trailers":
        return not message.get("more_trailers", False)
    if kind in ("http.response.body", "http.response.zerocopysend", "websocket.http.response.body"):
        return not message.get("more_body", False)
    return False


def _check_headers(where: str, headers: Any) -> None:
    try:
        pairs = list(headers)
    except TypeError:
        raise ASGIProtocolError(f"{where}: headers must be an iterable, got {headers!r}") from None
    for pair in pairs:
        if (
            not isinstance(pair, (tuple, list))
            or len(pair) != 2
            or not all(isinstance(part, bytes) for part in pair)
        ):
            raise ASGIProtocolError(
                f"{where}: each header must be a [name, value] pair of bytes, got {pair!r}"
            )


def _check_bytes(where: str, message: Message, key: str) -> None:
    value = message.get(key, b"")
    if not isinstance(value, bytes):
        raise ASGIProtocolError(f"{where}: {key!r} must be bytes, got {type(value).__name__}")


class ASGIValidator:
    """Wrap an ASGI app and raise ``ASGIProtocolError`` on the first ASGI 3 violation it makes.

    Checked on the messages the app sends: HTTP ``start`` exactly once and before any body, a
    valid status, headers as pairs of bytes, bytes bodies, nothing after the final body except
    the trailers announced in ``start``, extension messages only when the scope offers the
    extension; WebSocket ``accept`` only after ``websocket.connect`` was received and before any
    ``send``, nothing after ``close``, a denial response only before ``accept``; and on return, a
    complete response unless the client disconnected or ``send`` failed. Checked on the messages
    the app receives: each is of the scope's kind and carries bytes bodies. Unknown message types
    pass unchecked.

    Args:
        app: The ASGI application to check.
    """

    __slots__ = ("app",)

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            checker: _HTTPChecker | _WebSocketChecker | None = _HTTPChecker(scope)
        elif kind == "websocket":
            checker = _WebSocketChecker(scope)
        else:
            checker = None
        if checker is None:
            await self.app(scope, receive, send)
            return

        async def receive_checked() -> Message:
            message = await receive()
            checker.received(message)
            return message

        async def send_checked(message: Message) -> None:
            checker.sent(message)
            try:
                await send(message)
            except BaseException:
                checker.broken = True
                raise

        await self.app(scope, receive_checked, send_checked)
        checker.returned()


class _HTTPChecker:
    __slots__ = ("broken", "disconnected", "extensions", "state", "trailers")

    def __init__(self, scope: Scope) -> None:
        self.extensions = scope.get("extensions") or {}
        self.state = "start"  # start -> body -> (trailers) -> done
        self.trailers = False
        self.disconnected = False
        self.broken = False

    def received(self, message: Message) -> None:
        kind = message.get("type")
        if kind == "http.request":
            _check_bytes("http.request", message, "body")
        elif kind == "http.disconnect":
            self.disconnected = True
        else:
            raise ASGIProtocolError(f"an HTTP app received a {kind!r} message")

    def _require(self, extension: str, kind: str) -> None:
        if extension not in self.extensions:
            raise ASGIProtocolError(
                f"{kind} sent but the server does not offer the {extension!r} extension"
            )

    def sent(self, message: Message) -> None:
        kind = message.get("type")
        if not isinstance(kind, str):
            raise ASGIProtocolError(f"message without a string 'type': {message!r}")
        if kind == "http.response.start":
            if self.state != "start":
                raise ASGIProtocolError(
                    f"http.response.start sent twice (expected a body message, state {self.state})"
                )
            status = message.get("status")
            if not isinstance(status, int) or not 100 <= status <= 599:
                raise ASGIProtocolError(f"http.response.start: invalid status {status!r}")
            _check_headers("http.response.start", message.get("headers", ()))
            self.trailers = bool(message.get("trailers", False))
            if self.trailers:
                self._require("http.response.trailers", "a start with trailers=True")
            self.state = "body"
        elif kind in ("http.response.body", "http.response.zerocopysend", "http.response.pathsend"):
            if self.state == "start":
                raise ASGIProtocolError(f"{kind} sent before http.response.start")
            if self.state != "body":
                raise ASGIProtocolError(f"{kind} sent after the response body was complete")
            if kind == "http.response.body":
                _check_bytes(kind, message, "body")
            else:
                self._require(kind, kind)
            if kind == "http.response.pathsend" or not message.get("more_body", False):
                self.state = "trailers" if self.trailers else "done"
        elif kind == "http.response.trailers":
            if self.state != "trailers":
                raise ASGIProtocolError(
                    "http.response.trailers sent without trailers=True in start, or before the "
                    f"final body (state {self.state})"
                )
            _check_headers(kind, message.get("headers", ()))
            if not message.get("more_trailers", False):
                self.state = "done"
        elif kind == "http.response.early_hint":
            self._require(kind, kind)
            if self.state != "start":
                raise ASGIProtocolError("http.response.early_hint sent after http.response.start")
        elif kind.startswith("websocket."):
            raise ASGIProtocolError(f"an HTTP app sent a {kind!r} message")

    def returned(self) -> None:
        if self.state != "done" and not self.disconnected and not self.broken:
            raise ASGIProtocolError(
                f"the app returned before completing its response (state {self.state})"
            )


class _WebSocketChecker:
    __slots__ = ("broken", "connected", "disconnected", "extensions", "state")

    def __init__(self, scope: Scope) -> None:
        self.extensions = scope.get("extensions") or {}
        self.state = "connecting"  # connecting -> open | denying -> closed
        self.connected = False
        self.disconnected = False
        self.broken = False

    def received(self, message: Message) -> None:
        kind = message.get("type")
        if kind == "websocket.connect":
            self.connected = True
        elif kind == "websocket.receive":
            if message.get("bytes") is not None:
                _check_bytes(kind, message, "bytes")
        elif kind == "websocket.disconnect":
            self.disconnected = True
        else:
            raise ASGIProtocolError(f"a WebSocket app received a {kind!r} message")

    def sent(self, message: Message) -> None:
        kind = message.get("type")
        if not isinstance(kind, str):
            raise ASGIProtocolError(f"message without a string 'type': {message!r}")
        if self.state == "closed":
            raise ASGIProtocolError(f"{kind} sent after the WebSocket was closed")
        if kind == "websocket.accept":
            if self.state != "connecting":
                raise ASGIProtocolError(f"websocket.accept sent in state {self.state}")
            if not self.connected:
                raise ASGIProtocolError(
                    "websocket.accept sent before websocket.connect was received"
                )
            _check_headers(kind, message.get("headers", ()))
            self.state = "open"
        elif kind == "websocket.send":
            if self.state != "open":
                raise ASGIProtocolError(
                    f"websocket.send sent before websocket.accept ({self.state})"
                )
            has_bytes = message.get("bytes") is not None
            has_text = message.get("text") is not None
            if has_bytes == has_text:
                raise ASGIProtocolError("websocket.send must carry exactly one of bytes or text")
        elif kind == "websocket.close":
            if self.state == "denying":
                raise ASGIProtocolError("websocket.close sent during a denial response")
            self.state = "closed"
        elif kind == "websocket.http.response.start":
            self._require_denial(kind)
            if self.state != "connecting":
                raise ASGIProtocolError(f"{kind} sent in state {self.state}")
            _check_headers(kind, message.get("headers", ()))
            self.state = "denying"
        elif kind == "websocket.http.response.body":
            self._require_denial(kind)
            if self.state != "denying":
                raise ASGIProtocolError(f"{kind} sent before websocket.http.response.start")
            _check_bytes(kind, message, "body")
            if not message.get("more_body", False):
                self.state = "closed"
        elif kind.startswith("http."):
            raise ASGIProtocolError(f"a WebSocket app sent a {kind!r} message")

    def _require_denial(self, kind: str) -> None:
        if "websocket.http.response" not in self.extensions:
            raise ASGIProtocolError(
                f"{kind} sent but the server does not offer 'websocket.http.response'"
            )

    def returned(self) -> None:
        # Returning while still connecting is allowed: the server then closes with 403.
        if self.state == "denying" and not self.disconnected and not self.broken:
            raise ASGIProtocolError("the app returned in the middle of a denial response")
