"""Request body limits: RFC 9110 §15.5.14 (413 Content Too Large), §8.6 (Content-Length),
§15.5.9 (408 Request Timeout), and RFC 6455 §7.4.1 (1009, message too big) for WebSockets."""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Iterable, Mapping

import anyio

from ._core.outcome import Outcome, set_outcome
from ._core.paths import PathPattern, PathTable
from ._core.problem import send_problem
from ._types import ASGIApp, Message, Receive, Scope, Send

__all__ = [
    "MAX_BODY_SIZE_SCOPE_KEY",
    "BodyLimitMiddleware",
    "BodyRejected",
    "BodyTimeout",
    "BodyTooLarge",
    "declared_length",
]

logger = logging.getLogger("middlewares.body_limit")

#: The scope key Starlette's ``RequestBodyLimitMiddleware`` writes: the limit of this request.
MAX_BODY_SIZE_SCOPE_KEY = "starlette.max_body_size"

# More digits than any limit can have: parsed as "too large" without building a huge int.
_MAX_DIGITS = 18
_TOO_LONG = 10**_MAX_DIGITS
# RFC 9112 §9.6: the client may still be sending the body; reading on would parse its bytes
# as the next request, so the connection ends with the answer.
_CLOSE = ((b"connection", b"close"),)


class BodyRejected(Exception):
    """The request body was refused; the app's ``receive()`` raises this from then on.

    Attributes:
        status_code: The status the client is answered with.
    """

    status_code = 400
    title = "Bad Request"
    outcome: Outcome = "too_large"

    def __init__(self, message: str, detail: str, **members: object) -> None:
        super().__init__(message)
        self._detail = detail
        self._members = members

    async def reply(self, send: Send) -> None:
        """Send the client the problem response for this refusal."""
        await send_problem(
            send, self.status_code, self.title, self._detail, _CLOSE, **self._members
        )


class BodyTooLarge(BodyRejected):
    """The request body passed ``max_body_size``."""

    status_code = 413
    title = "Content Too Large"

    def __init__(self, max_body_size: int) -> None:
        super().__init__(
            f"the request body is larger than max_body_size={max_body_size} bytes",
            f"The request body is larger than the limit of {max_body_size} bytes.",
            max_body_size=max_body_size,
        )
        self.max_body_size = max_body_size


class BodyTimeout(BodyRejected):
    """No part of the request body arrived for ``body_timeout`` seconds."""

    status_code = 408
    title = "Request Timeout"
    outcome: Outcome = "timeout"

    def __init__(self, body_timeout: float) -> None:
        super().__init__(
            f"no request body bytes arrived for body_timeout={body_timeout} s",
            f"No part of the request body arrived for {body_timeout} seconds.",
            body_timeout=body_timeout,
        )
        self.body_timeout = body_timeout


def declared_length(headers: Iterable[tuple[bytes, bytes]]) -> int | None:
    """Return the request's ``Content-Length``, or None when it has none.

    RFC 9110 §8.6: the value is ``1*DIGIT``; a list of identical values (``5, 5``, or the
    same field twice) stands for that one value. A value with more digits than any limit is
    returned as ``10**18`` without being converted.

    Raises:
        ValueError: a member that is not all digits, or members that differ.
    """
    found: str | None = None
    for key, value in headers:
        if key != b"content-length" and key.lower() != b"content-length":
            continue
        if found is None and value.isdigit() and len(value) <= _MAX_DIGITS:
            found = str(int(value))  # the common case: one plain number
            continue
        for member in value.split(b","):
            digits = member.strip(b" \t")
            if not digits.isdigit():
                raise ValueError(f"Content-Length must be digits, got {value[:40]!r}")
            text = digits.lstrip(b"0").decode("ascii") or "0"
            if found is not None and text != found:
                raise ValueError("the request has Content-Length values that differ")
            found = text
    if found is None:
        return None
    return _TOO_LONG if len(found) > _MAX_DIGITS else int(found)


def _message_size(message: Message) -> int:
    """The payload bytes of a ``websocket.receive`` message (text counted as UTF-8)."""
    data = message.get("bytes")
    if data is not None:
        return len(data)
    text: str = message.get("text") or ""
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))


def _check_limit(name: str, value: object) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
        raise ValueError(f"{name} must be an integer >= 0 or None, got {value!r}")


class BodyLimitMiddleware:
    """Refuse request bodies larger than a limit, before the app reads them or even runs.

    A request whose ``Content-Length`` is over the limit is answered ``413 Content Too Large``
    before the app is called and before anything is received, so a server never sends
    ``100 Continue`` for it. A chunked or streamed body is counted as it is received: the
    message that crosses the limit is never delivered; the app's ``receive()`` raises
    `BodyTooLarge` instead, and the client gets the 413 in place of whatever the app answers.
    If the response had already started, the rest of it is dropped and the connection is left
    unfinished, so the server closes it, and a warning is logged: a status can no longer be
    sent, and a complete-looking response would hide that it was cut. Every refusal is an RFC
    9457 ``application/problem+json`` body naming the limit, with ``Connection: close``, and
    the request's outcome is recorded as ``too_large`` (``timeout`` for ``body_timeout``).
    Limits may differ per path; WebSocket messages and connections have limits of their own.

    Args:
        app: The ASGI application to wrap.
        max_body_size: The largest request body accepted, in bytes; None for no limit except
            those of ``path_limits``. Defaults to 10 MiB. Also written to
            ``scope["starlette.max_body_size"]``, as Starlette does.
        path_limits: Limits for some paths, above or below ``max_body_size``: a mapping of
            path pattern (``"/upload"``, ``"/files/*"``, ``"/items/{id}"``, a regex; see
            ``PathMatcher``) to bytes, or None for no limit. The first matching pattern wins.
        body_timeout: Seconds the body may stall between two received messages before the
            request is answered ``408 Request Timeout`` (slowloris); None waits forever, the
            default. Only reads before the body is complete are timed.
        websocket_max_message_size: The largest WebSocket message accepted, in bytes (text
            counted as UTF-8); None for no limit, the default.
        websocket_max_connection_size: The most bytes a WebSocket connection may receive in
            all; None for no limit, the default. A connection over either WebSocket limit is
            closed with code 1009 and the app receives ``websocket.disconnect``.

    Raises:
        ValueError: a limit that is not an integer >= 0 or None, a ``body_timeout`` that is
            not a positive number, or an invalid path pattern.
    """

    __slots__ = (
        "_body_timeout",
        "_max_body_size",
        "_path_limits",
        "_websocket_max_connection",
        "_websocket_max_message",
        "app",
    )

    def __init__(
        self,
        app: ASGIApp,
        max_body_size: int | None = 10 * 1024 * 1024,
        *,
        path_limits: Mapping[PathPattern, int | None] | None = None,
        body_timeout: float | None = None,
        websocket_max_message_size: int | None = None,
        websocket_max_connection_size: int | None = None,
    ) -> None:
        _check_limit("max_body_size", max_body_size)
        _check_limit("websocket_max_message_size", websocket_max_message_size)
        _check_limit("websocket_max_connection_size", websocket_max_connection_size)
        for pattern, limit in (path_limits or {}).items():
            _check_limit(f"path_limits[{pattern!r}]", limit)
        if body_timeout is not None and (
            isinstance(body_timeout, bool)
            or not isinstance(body_timeout, (int, float))
            or not 0 < body_timeout < math.inf
        ):
            raise ValueError(
                f"body_timeout must be a positive number of seconds or None, got {body_timeout!r}"
            )
        self.app = app
        self._max_body_size = max_body_size
        table = PathTable(dict(path_limits or {}))
        self._path_limits = table if table else None
        self._body_timeout = body_timeout
        self._websocket_max_message = websocket_max_message_size
        self._websocket_max_connection = websocket_max_connection_size

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "websocket" and (
                self._websocket_max_message is not None
                or self._websocket_max_connection is not None
            ):
                await self._limit_websocket(scope, receive, send)
            else:
                await self.app(scope, receive, send)
            return
        table = self._path_limits
        limit = self._max_body_size if table is None else table.lookup(scope, self._max_body_size)
        if limit is None:
            await self.app(scope, receive, send)
            return
        scope[MAX_BODY_SIZE_SCOPE_KEY] = limit
        try:
            length = declared_length(scope["headers"])
        except ValueError as error:
            # RFC 9112 §6.3: an invalid Content-Length is an unrecoverable framing error.
            logger.debug("request refused: %s", error)
            await send_problem(send, 400, "Bad Request", str(error), _CLOSE)
            return
        if length is not None and length > limit:
            # Before the app runs and before any receive(): no 100 Continue, no side effects.
            set_outcome(scope, "too_large")
            logger.debug("request refused: Content-Length %d over the %d-byte limit", length, limit)
            await BodyTooLarge(limit).reply(send)
            return
        timeout = self._body_timeout
        received = 0
        complete = False
        started = False
        rejection: BodyRejected | None = None
        answered = False

        async def receive_with_limit() -> Message:
            nonlocal received, complete, rejection
            if rejection is not None:
                raise rejection
            if complete or timeout is None:
                message = await receive()
            else:
                with anyio.move_on_after(timeout) as waiting:
                    message = await receive()
                if waiting.cancelled_caught:
                    rejection = _refused(scope, BodyTimeout(timeout), started)
                    raise rejection
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    rejection = _refused(scope, BodyTooLarge(limit), started)
                    raise rejection
                if not message.get("more_body", False):
                    complete = True
            return message

        # A plain function returning an awaitable: no coroutine of its own per message.
        def send_with_limit(message: Message) -> Awaitable[None]:
            nonlocal started, answered
            if rejection is None:
                if message["type"] == "http.response.start":
                    started = True
                return send(message)
            if not started and not answered:
                # The app answered the refused body (often with a 500): the client gets the
                # status that says what was wrong instead.
                answered = True
                return rejection.reply(send)
            return _dropped()  # after the start, the response must stay unfinished

        try:
            await self.app(scope, receive_with_limit, send_with_limit)
        except BodyRejected as error:
            if error is not rejection:
                raise
        if rejection is not None and not started and not answered:
            await rejection.reply(send)

    async def _limit_websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        max_message = self._websocket_max_message
        max_connection = self._websocket_max_connection
        total = 0
        closed = False

        async def receive_with_limit() -> Message:
            nonlocal total, closed
            if closed:
                return {"type": "websocket.disconnect", "code": 1009}
            message = await receive()
            if message["type"] == "websocket.receive":
                size = _message_size(message)
                total += size
                if (max_message is not None and size > max_message) or (
                    max_connection is not None and total > max_connection
                ):
                    closed = True
                    set_outcome(scope, "too_large")
                    logger.debug(
                        "WebSocket %r closed: a %d-byte message, %d bytes in all, over the limit",
                        scope.get("path"),
                        size,
                        total,
                    )
                    await send({"type": "websocket.close", "code": 1009, "reason": "Too big"})
                    return {"type": "websocket.disconnect", "code": 1009}
            return message

        async def send_unless_closed(message: Message) -> None:
            if not closed:
                await send(message)

        await self.app(scope, receive_with_limit, send_unless_closed)


def _refused(scope: Scope, error: BodyRejected, started: bool) -> BodyRejected:
    """Record a refusal; after the start it can only be logged, the status is gone."""
    set_outcome(scope, error.outcome)
    if started:
        logger.warning(
            "%s %r: %s after the response started (%d-after-start); the response is cut short"
            " and the connection closed",
            scope.get("method"),
            scope.get("path"),
            error,
            error.status_code,
        )
    return error


async def _dropped() -> None:
    return None
