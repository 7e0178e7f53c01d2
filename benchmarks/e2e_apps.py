"""Apps served by ``benchmarks/e2e.py``: the same endpoints bare, behind this library's stack,
and behind the equivalent stack built from the peers."""

from __future__ import annotations

import json

from middlewares._types import ASGIApp, Receive, Scope, Send

from .harness import PassThrough

SMALL = b"hello, world"
JSON_4K = json.dumps(
    [{"id": i, "name": f"item {i}", "tags": ["a", "b"], "price": i * 1.5} for i in range(64)]
).encode()[:4096]


async def bare(scope: Scope, receive: Receive, send: Send) -> None:
    """``/json`` answers 4 KiB of JSON; every other path a 12-byte text."""
    if scope["type"] != "http":
        return
    json_body = scope["path"] == "/json"
    body = JSON_4K if json_body else SMALL
    content_type = b"application/json" if json_body else b"text/plain"
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", content_type),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


pass_through: ASGIApp = PassThrough(bare)
