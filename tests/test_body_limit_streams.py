"""BodyLimitMiddleware on streams: the idle timeout on body reads (slowloris) and the WebSocket
message and connection limits, in-process and through uvicorn."""

from __future__ import annotations

import json

import anyio
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from middlewares._core.outcome import get_outcome
from middlewares._types import Message, Receive, Scope, Send
from middlewares.body_limit import BodyLimitMiddleware, BodyTimeout
from middlewares.testing import http_scope, run_asgi, websocket_scope

from .servers import serve

pytestmark = pytest.mark.anyio


def stalling_receive(chunks: list[bytes]) -> Receive:
    """A client that sends ``chunks`` of a longer body, then stalls for good."""
    pending = list(chunks)

    async def receive() -> Message:
        if pending:
            return {"type": "http.request", "body": pending.pop(0), "more_body": True}
        await anyio.sleep_forever()
        raise AssertionError("unreachable")  # pragma: no cover

    return receive


async def read_body(scope: Scope, receive: Receive, send: Send) -> None:
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"read"})


async def test_a_stalled_body_gets_408_and_the_app_a_clear_error() -> None:
    errors: list[BaseException] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await read_body(scope, receive, send)
        except BodyTimeout as error:
            errors.append(error)
            raise

    scope = http_scope("POST")
    recorded = await run_asgi(
        BodyLimitMiddleware(app, 1000, body_timeout=0.05),
        scope,
        receive=stalling_receive([b"0123456789"]),
    )
    assert recorded.status == 408
    assert recorded.header("connection") == "close"
    assert json.loads(recorded.body)["body_timeout"] == 0.05
    assert str(errors[0]) == "no request body bytes arrived for body_timeout=0.05 s"
    assert get_outcome(scope) == "timeout"


async def test_waiting_for_the_disconnect_after_the_body_is_never_timed() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await read_body(scope, receive, send)
        with anyio.move_on_after(0.2):
            assert (await receive())["type"] == "http.disconnect"

    recorded = await run_asgi(BodyLimitMiddleware(app, 1000, body_timeout=0.01), body=b"abc")
    assert recorded.status == 200


async def test_a_body_that_keeps_arriving_is_not_timed_out() -> None:
    recorded = await run_asgi(
        BodyLimitMiddleware(read_body, 1000, body_timeout=5),
        http_scope("POST"),
        body=[b"a", b"b", b"c"],
    )
    assert recorded.body == b"read"


# --- WebSocket -------------------------------------------------------------------------------


async def echo_socket(scope: Scope, receive: Receive, send: Send) -> None:
    """Accepts, echoes every message, and records how it ended in ``scope['ended']``."""
    while True:
        message = await receive()
        if message["type"] == "websocket.connect":
            await send({"type": "websocket.accept"})
        elif message["type"] == "websocket.receive":
            key = "text" if message.get("bytes") is None else "bytes"
            await send({"type": "websocket.send", key: message[key]})
        else:
            scope["ended"] = message
            return


def text(value: str) -> Message:
    return {"type": "websocket.receive", "text": value}


@pytest.mark.parametrize(
    ("messages", "limits", "echoed"),
    [
        pytest.param([text("a" * 10)], {"websocket_max_message_size": 10}, 1, id="at the limit"),
        pytest.param(
            [text("a" * 11)], {"websocket_max_message_size": 10}, 0, id="message over the limit"
        ),
        pytest.param(
            [text("é" * 6)], {"websocket_max_message_size": 10}, 0, id="text counted as utf-8"
        ),
        pytest.param(
            [{"type": "websocket.receive", "bytes": b"x" * 11}],
            {"websocket_max_message_size": 10},
            0,
            id="bytes over the limit",
        ),
        pytest.param(
            [text("a" * 6)] * 3,
            {"websocket_max_connection_size": 15},
            2,
            id="connection total over the limit",
        ),
    ],
)
async def test_websocket_limits_close_with_1009_and_the_app_sees_a_disconnect(
    messages: list[Message], limits: dict[str, int], echoed: int
) -> None:
    scope = websocket_scope()
    recorded = await run_asgi(
        BodyLimitMiddleware(echo_socket, **limits),
        scope,
        websocket_messages=[*messages, {"type": "websocket.disconnect", "code": 1000}],
    )
    assert len(recorded.of_type("websocket.send")) == echoed
    if echoed < len(messages):
        assert recorded.messages[-1] == {
            "type": "websocket.close",
            "code": 1009,
            "reason": "Too big",
        }
        assert scope["ended"] == {"type": "websocket.disconnect", "code": 1009}
        assert get_outcome(scope) == "too_large"


async def test_the_app_sending_after_the_close_is_dropped() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        assert (await receive())["type"] == "websocket.disconnect"
        assert (await receive())["type"] == "websocket.disconnect"
        await send({"type": "websocket.send", "text": "too late"})

    recorded = await run_asgi(
        BodyLimitMiddleware(app, websocket_max_message_size=1),
        websocket_scope(),
        websocket_messages=[text("ab")],
    )
    assert [m["type"] for m in recorded.messages] == ["websocket.accept", "websocket.close"]


async def test_websockets_pass_untouched_without_websocket_limits() -> None:
    seen: list[Receive] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(receive)
        await send({"type": "websocket.close"})

    async def receive() -> Message:
        return {"type": "websocket.connect"}

    await run_asgi(BodyLimitMiddleware(app), websocket_scope(), receive=receive, validate=False)
    assert seen == [receive]


@pytest.mark.server
def test_websocket_message_limit_through_uvicorn() -> None:
    app = BodyLimitMiddleware(echo_socket, websocket_max_message_size=1024)
    with serve(app) as url, connect(url.replace("http", "ws") + "/ws") as socket:
        socket.send("small")
        assert socket.recv(timeout=5) == "small"
        socket.send("x" * 2000)
        with pytest.raises(ConnectionClosed) as closed:
            socket.recv(timeout=5)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1009
