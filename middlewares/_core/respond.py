"""Short-circuit HTTP replies sent straight to the ASGI ``send`` (ASGI HTTP spec, response)."""

from __future__ import annotations

from collections.abc import Iterable

from .._types import Send

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
