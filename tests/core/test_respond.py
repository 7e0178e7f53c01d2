from __future__ import annotations

from typing import Any

import pytest

from middlewares._core.respond import (
    refuse_handshake,
    send_response,
    send_server_error,
)
from middlewares._types import Message, Receive, Scope, Send
from middlewares.testing import run_asgi, websocket_scope

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


DENIAL = {"websocket.http.response": {}}


@pytest.mark.parametrize(
    ("extensions", "denial_response", "expected"),
    [
        pytest.param(
            DENIAL,
            True,
            ["websocket.http.response.start", "websocket.http.response.body"],
            id="a denial response when asked and the server offers one",
        ),
        pytest.param(None, True, ["websocket.close"], id="asked, but not offered: a close"),
        pytest.param(DENIAL, False, ["websocket.close"], id="by default a close before accept"),
    ],
)
async def test_refuse_handshake(
    extensions: dict[str, Any] | None, denial_response: bool, expected: list[str]
) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await refuse_handshake(scope, receive, send, 403, b"no", denial_response=denial_response)

    result = await run_asgi(app, websocket_scope(extensions=extensions))
    assert [m["type"] for m in result.messages] == expected
    if expected[0] != "websocket.close":
        assert (result.status, result.body) == (403, b"no")


async def test_refuse_handshake_sends_nothing_to_a_client_that_left() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await refuse_handshake(scope, receive, send, 403, b"no")

    async def gone() -> Message:
        return {"type": "websocket.disconnect", "code": 1001}

    result = await run_asgi(app, websocket_scope(), receive=gone)
    assert result.messages == []


async def test_a_denial_response_carries_the_given_headers() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await refuse_handshake(
            scope,
            receive,
            send,
            429,
            b"slow down",
            headers=[(b"retry-after", b"30")],
            denial_response=True,
        )

    result = await run_asgi(app, websocket_scope(extensions={"websocket.http.response": {}}))
    assert (result.status, result.body) == (429, b"slow down")
    assert result.header("retry-after") == "30"
    assert result.header("content-length") == "9"


async def test_a_server_error_carries_the_headers_and_ignores_a_client_that_left() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send_server_error(send, [(b"access-control-allow-origin", b"https://a.test")])

    result = await run_asgi(app)
    assert (result.status, result.body) == (500, b"Internal Server Error")
    assert result.header("access-control-allow-origin") == "https://a.test"

    async def gone(message: Message) -> None:
        raise OSError("the client left")

    await send_server_error(gone, [])  # nothing raised: the app's own error is what matters
