"""Short-circuit replies sent straight to the ASGI ``send``: HTTP responses (ASGI HTTP spec,
response) and WebSocket handshake refusals (ASGI WebSocket spec, denial response extension)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable

from .._types import Receive, Scope, Send

TEXT_PLAIN = b"text/plain; charset=utf-8"
#: RFC 6455 §7.4.1: 1008, the endpoint refuses a message (here, the handshake) by policy.
POLICY_VIOLATION = 1008


async def send_response(
    send: Send,
    status: int,
    headers: Iterable[tuple[bytes, bytes]] = (),
    body: bytes = b"",
    *,
    content_type: bytes | None = TEXT_PLAIN,
    prefix: str = "http",
) -> None:
    """Send a complete response: ``http.response.start`` then one final ``http.response.body``.

    ``Content-Length`` is always computed from ``body``; ``content_type`` is added unless None or
    ``headers`` already has one. ``prefix="websocket.http"`` sends the same response as a
    WebSocket denial.
    """
    raw = [(k, v) for k, v in headers if k.lower() != b"content-length"]
    if content_type is not None and not any(k.lower() == b"content-type" for k, _ in raw):
        raw.append((b"content-type", content_type))
    raw.append((b"content-length", str(len(body)).encode("ascii")))
    await send({"type": f"{prefix}.response.start", "status": status, "headers": raw})
    await send({"type": f"{prefix}.response.body", "body": body, "more_body": False})


async def send_server_error(send: Send, headers: Iterable[tuple[bytes, bytes]]) -> None:
    """Send a bare 500 carrying ``headers`` for an app that raised before starting its response.

    The 500 an outer error handler or the server builds lacks the headers a layer adds (CORS,
    security headers: Starlette #1116), so the layer sends its own, then re-raises the app's
    exception for the server to log. A send that fails (the client left) is ignored: the app's
    exception is the one that matters.
    """
    with contextlib.suppress(Exception):
        await send_response(send, 500, headers, b"Internal Server Error")


async def refuse_handshake(
    scope: Scope,
    receive: Receive,
    send: Send,
    status: int,
    body: bytes,
    *,
    headers: Iterable[tuple[bytes, bytes]] = (),
    content_type: bytes | None = TEXT_PLAIN,
    denial_response: bool = False,
) -> None:
    """Refuse a WebSocket handshake before the app can accept it (ASGI WebSocket spec).

    Waits for ``websocket.connect``, then closes before accept, which every server turns into
    HTTP 403. With ``denial_response``, the status, ``headers`` (a ``Retry-After``) and body go
    out as an HTTP denial response instead where the server offers the extension: uvicorn's
    default WebSocket stack logs an ERROR line for each one, which a hostile page can use to
    flood alerting, so it is opt-in.
    Nothing is sent when the client left first.
    """
    message = await receive()
    if message["type"] != "websocket.connect":
        return
    if denial_response and "websocket.http.response" in (scope.get("extensions") or {}):
        await send_response(
            send, status, headers, body, content_type=content_type, prefix="websocket.http"
        )
    else:
        await send({"type": "websocket.close", "code": POLICY_VIOLATION})
