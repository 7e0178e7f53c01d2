from __future__ import annotations

import pytest

from middlewares._core.respond import send_response
from middlewares._types import Receive, Scope, Send
from middlewares.testing import run_asgi

pytestmark = pytest.mark.anyio


async def test_send_response_sets_length_and_type() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send_response(send, 400, [(b"content-length", b"99"), (b"x-a", b"1")], b"bad")

    result = await run_asgi(app)
    assert result.status == 400
    assert result.body == b"bad"
    assert result.header("content-length") == "3"
    assert result.header("content-type") == "text/plain; charset=utf-8"
    assert result.header("x-a") == "1"


async def test_send_response_keeps_a_given_content_type() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send_response(send, 200, [(b"Content-Type", b"application/json")], b"{}")

    result = await run_asgi(app)
    assert result.header_all("content-type") == ["application/json"]


async def test_send_response_without_content_type() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send_response(send, 204, content_type=None)

    result = await run_asgi(app)
    assert result.headers == [(b"content-length", b"0")]
