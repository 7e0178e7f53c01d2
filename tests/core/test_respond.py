from __future__ import annotations

import pytest

from middlewares._core.respond import send_refusal, send_response
from middlewares._types import Receive, Scope, Send
from middlewares.testing import Recorded, http_scope, run_asgi, websocket_scope

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


async def _refuse(scope: Scope) -> Recorded:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send_refusal(scope, send, 400, body=b"Invalid host header")

    return await run_asgi(app, scope)


async def test_refusal_of_an_http_request_is_a_response() -> None:
    result = await _refuse(http_scope())
    assert result.status == 400
    assert result.body == b"Invalid host header"


async def test_refusal_of_a_websocket_uses_the_denial_extension_when_offered() -> None:
    scope = websocket_scope(extensions={"websocket.http.response": {}})
    result = await _refuse(scope)
    assert result.start["type"] == "websocket.http.response.start"
    assert result.status == 400
    assert result.body == b"Invalid host header"


async def test_refusal_of_a_websocket_without_the_extension_is_a_close() -> None:
    result = await _refuse(websocket_scope())
    assert [m["type"] for m in result.messages] == ["websocket.close"]
    assert result.messages[0]["code"] == 1008
