"""Short-circuit HTTP replies sent straight to the ASGI ``send`` (ASGI HTTP spec, response)."""

from __future__ import annotations

from collections.abc import Iterable

from .._types import Receive, Scope, Send

TEXT_PLAIN = b"text/plain; charset=utf-8"


async def send_response(
    send: Send,
    status: int,
    headers: Iterable[tuple[bytes, bytes]] = (),
    body: bytes = b"",
    *,
    content_type: bytes | None = TEXT_PLAIN,
) -> None:
    """Send a complete response: ``http.response.start`` then one final ``http.response.body``.

    ``Content-Length`` is always computed from ``body``; ``content_type`` is added unless None or
    ``headers`` already has one.
    """
    raw = [(k, v) for k, v in headers if k.lower() != b"content-length"]
    if content_type is not None and not any(k.lower() == b"content-type" for k, _ in raw):
        raw.append((b"content-type", content_type))
    raw.append((b"content-length", str(len(body)).encode("ascii")))
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body, "more_body": False})


async def refuse_handshake(
    scope: Scope,
    receive: Receive,
    send: Send,
    status: int,
    body: bytes,
    *,
    content_type: bytes = TEXT_PLAIN,
    denial_response: bool = False,
) -> None:
    """Refuse a WebSocket handshake before the app can accept it (ASGI WebSocket spec).

    Waits for ``websocket.connect``, then closes before accept, which every server turns into
    HTTP 403. With ``denial_response``, the status and body are sent as an HTTP denial response
    instead where the server offers the ``websocket.http.response`` extension (uvicorn's default
    WebSocket stack logs an ERROR line for each such response, so it is opt-in). Nothing is sent
    when the client left first.
    """
    message = await receive()
    if message["type"] != "websocket.connect":
        return
    if not denial_response or "websocket.http.response" not in (scope.get("extensions") or {}):
        await send({"type": "websocket.close", "code": 1008})  # RFC 6455 §7.4.1: policy
        return
    headers = [(b"content-type", content_type), (b"content-length", b"%d" % len(body))]
    await send({"type": "websocket.http.response.start", "status": status, "headers": headers})
    await send({"type": "websocket.http.response.body", "body": body})
