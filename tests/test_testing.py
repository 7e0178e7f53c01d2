"""The validator catches each ASGI violation, and run_asgi plays the server faithfully."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from middlewares._types import Message, Receive, Scope, Send
from middlewares.testing import (
    ASGIProtocolError,
    ASGIValidator,
    http_scope,
    run_asgi,
    websocket_scope,
)

pytestmark = pytest.mark.anyio

START: Message = {"type": "http.response.start", "status": 200, "headers": []}
BODY: Message = {"type": "http.response.body", "body": b"ok"}


def sends(*messages: Message) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            await receive()
        for message in messages:
            await send(message)

    return app


HTTP_VIOLATIONS = [
    pytest.param([BODY], "before http.response.start", id="body before start"),
    pytest.param([START, START], "sent twice", id="two starts"),
    pytest.param([START, BODY, BODY], "after the response body was complete", id="after final"),
    pytest.param(
        [{**START, "headers": [("content-type", "text/plain")]}], "pair of bytes", id="str headers"
    ),
    pytest.param([{**START, "headers": 5}], "must be an iterable", id="headers not iterable"),
    pytest.param([{**START, "status": "200"}], "invalid status", id="status not int"),
    pytest.param([START, {**BODY, "body": "text"}], "must be bytes", id="str body"),
    pytest.param(
        [{**START, "trailers": True}], "http.response.trailers", id="trailers not offered"
    ),
    pytest.param(
        [START, BODY, {"type": "http.response.trailers", "headers": []}],
        "without trailers=True",
        id="unannounced trailers",
    ),
    pytest.param(
        [START, {"type": "http.response.pathsend", "path": "/x"}],
        "does not offer",
        id="pathsend not offered",
    ),
    pytest.param([{"type": "websocket.accept"}], "an HTTP app sent", id="websocket message"),
    pytest.param([{"no": "type"}], "without a string 'type'", id="no type"),
    pytest.param([START], "returned before completing", id="returned mid-response"),
]


@pytest.mark.parametrize(("messages", "error"), HTTP_VIOLATIONS)
async def test_http_violations(messages: list[Message], error: str) -> None:
    with pytest.raises(ASGIProtocolError, match=error):
        await run_asgi(sends(*messages))


WEBSOCKET_VIOLATIONS = [
    pytest.param(
        [{"type": "websocket.send", "text": "x"}], "before websocket.accept", id="send first"
    ),
    pytest.param(
        [{"type": "websocket.accept"}, {"type": "websocket.accept"}],
        "in state open",
        id="accept twice",
    ),
    pytest.param(
        [{"type": "websocket.accept"}, {"type": "websocket.send"}], "exactly one", id="empty send"
    ),
    pytest.param(
        [{"type": "websocket.close"}, {"type": "websocket.send", "text": "x"}],
        "after the WebSocket was closed",
        id="after close",
    ),
    pytest.param(
        [{"type": "websocket.http.response.start", "status": 403, "headers": []}],
        "does not offer",
        id="denial not offered",
    ),
    pytest.param([START], "a WebSocket app sent", id="http message"),
    pytest.param(
        [{"type": "websocket.accept", "headers": [(b"a", "b")]}], "pair of bytes", id="bad headers"
    ),
]


@pytest.mark.parametrize(("messages", "error"), WEBSOCKET_VIOLATIONS)
async def test_websocket_violations(messages: list[Message], error: str) -> None:
    with pytest.raises(ASGIProtocolError, match=error):
        await run_asgi(sends(*messages), websocket_scope())


async def test_accept_before_connect_is_caught() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "websocket.accept"})

    with pytest.raises(ASGIProtocolError, match=r"before websocket\.connect"):
        await run_asgi(app, websocket_scope())


async def test_denial_response_rules() -> None:
    scope = websocket_scope(extensions={"websocket.http.response": {}})
    start = {"type": "websocket.http.response.start", "status": 403, "headers": []}
    body = {"type": "websocket.http.response.body", "body": b"no"}
    result = await run_asgi(sends(start, body), scope)
    assert result.status == 403
    assert result.body == b"no"
    with pytest.raises(ASGIProtocolError, match=r"before websocket\.http\.response\.start"):
        await run_asgi(sends(body), scope)
    with pytest.raises(ASGIProtocolError, match="during a denial"):
        await run_asgi(sends(start, {"type": "websocket.close"}), scope)
    with pytest.raises(ASGIProtocolError, match="middle of a denial"):
        await run_asgi(sends({**start}, {**body, "more_body": True}), scope)
    with pytest.raises(ASGIProtocolError, match="in state open"):
        await run_asgi(sends({"type": "websocket.accept"}, start), scope)


async def test_valid_extension_messages_pass() -> None:
    extensions = {
        "http.response.trailers": {},
        "http.response.pathsend": {},
        "http.response.early_hint": {},
        "http.response.zerocopysend": {},
    }
    scope = http_scope(extensions=extensions)
    hint = {"type": "http.response.early_hint", "links": [b"</a.css>; rel=preload"]}
    trailers = {"type": "http.response.trailers", "headers": [(b"x-checksum", b"1")]}
    result = await run_asgi(sends(hint, {**START, "trailers": True}, BODY, trailers), scope)
    assert [m["type"] for m in result.messages][-1] == "http.response.trailers"
    result = await run_asgi(sends(START, {"type": "http.response.pathsend", "path": "/f"}), scope)
    assert result.status == 200
    zerocopy = {"type": "http.response.zerocopysend", "file": 3, "more_body": False}
    assert (await run_asgi(sends(START, zerocopy), scope)).status == 200
    with pytest.raises(ASGIProtocolError, match="early_hint sent after"):
        await run_asgi(sends(START, hint, BODY), scope)
    with pytest.raises(ASGIProtocolError, match="before the final body"):
        await run_asgi(
            sends({**START, "trailers": True}, {**BODY, "more_body": True}, trailers), scope
        )


async def test_unknown_messages_and_scopes_pass_through() -> None:
    result = await run_asgi(sends({"type": "http.response.debug"}, START, BODY))
    assert result.body == b"ok"
    seen: list[str] = []

    async def lifespan_app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope["type"])

    await ASGIValidator(lifespan_app)({"type": "lifespan"}, receive_nothing, send_nothing)
    assert seen == ["lifespan"]


async def receive_nothing() -> Message:
    raise AssertionError("not called")


async def send_nothing(message: Message) -> None:
    raise AssertionError("not called")


async def test_received_messages_are_checked() -> None:
    async def echo(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send(START)
        await send(BODY)

    async def bad_body() -> Message:
        return {"type": "http.request", "body": "text"}

    with pytest.raises(ASGIProtocolError, match="must be bytes"):
        await run_asgi(echo, receive=bad_body)

    async def wrong_kind() -> Message:
        return {"type": "websocket.connect"}

    with pytest.raises(ASGIProtocolError, match="HTTP app received"):
        await run_asgi(echo, receive=wrong_kind)
    with pytest.raises(ASGIProtocolError, match="WebSocket app received"):
        await run_asgi(echo, websocket_scope(), receive=lambda: _message({"type": "http.request"}))


async def _message(message: Message) -> Message:
    return message


async def test_chunked_body_and_disconnect_after_response() -> None:
    received: list[Message] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            received.append(message)
            if not message.get("more_body"):
                break
        await send(START)
        await send(BODY)
        received.append(await receive())

    result = await run_asgi(app, http_scope("POST"), body=[b"a", b"b"])
    assert [m.get("body") for m in received[:2]] == [b"a", b"b"]
    assert [m.get("more_body") for m in received[:2]] == [True, False]
    assert received[2] == {"type": "http.disconnect"}
    assert result.body_chunks == [b"ok"]


async def test_a_disconnected_client_excuses_an_unfinished_response() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send(START)
        await receive()

    async def gone() -> Message:
        return {"type": "http.disconnect"}

    result = await run_asgi(app, receive=gone)
    assert result.status == 200


async def test_a_failing_send_excuses_an_unfinished_response() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await send(START)
        except OSError:
            return

    async def broken_send(message: Message) -> None:
        raise OSError("client went away")

    await ASGIValidator(app)(http_scope(), receive_nothing, broken_send)


async def test_websocket_conversation() -> None:
    async def echo(scope: Scope, receive: Receive, send: Send) -> None:
        assert (await receive())["type"] == "websocket.connect"
        await send({"type": "websocket.accept", "headers": [(b"x-a", b"1")]})
        message = await receive()
        await send({"type": "websocket.send", "text": message["text"]})
        await send({"type": "websocket.send", "bytes": b"raw"})
        await send({"type": "websocket.close", "code": 1000})
        assert (await receive())["type"] == "websocket.disconnect"

    result = await run_asgi(
        echo, websocket_scope(), websocket_messages=[{"type": "websocket.receive", "text": "hi"}]
    )
    assert [m.get("text") for m in result.of_type("websocket.send")] == ["hi", None]


async def test_returning_while_connecting_is_allowed() -> None:
    result = await run_asgi(sends(), websocket_scope())
    assert result.messages == []


async def test_recorded_helpers() -> None:
    app = sends(
        {**START, "headers": [(b"Set-Cookie", b"a=1"), (b"set-cookie", b"b=2")]},
        {**BODY, "more_body": True},
        {"type": "http.response.body", "body": b"!"},
    )
    result = await run_asgi(app, http_scope(headers={"X-Test": "1"}))
    assert result.header_all("set-cookie") == ["a=1", "b=2"]
    assert result.header("x-missing") is None
    assert result.body == b"ok!"
    with pytest.raises(AssertionError, match="no response start"):
        _ = (await run_asgi(sends(), websocket_scope())).status


def test_scopes_encode_headers() -> None:
    scope = http_scope("post", "/x", headers=[("X-A", "1"), (b"x-b", b"2")], root_path="/api")
    assert scope["method"] == "POST"
    assert scope["path"] == "/api/x"
    assert scope["headers"] == [(b"x-a", b"1"), (b"x-b", b"2")]
    assert websocket_scope(subprotocols=["chat"])["subprotocols"] == ["chat"]
