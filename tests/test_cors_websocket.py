"""CORSMiddleware guarding WebSocket handshakes (cross-site WebSocket hijacking), in-process
and through a real uvicorn with the ``websockets`` client; plus HTTP end to end."""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from middlewares._types import Message, Receive, Scope, Send
from middlewares.cors import CORSMiddleware
from middlewares.testing import run_asgi, websocket_scope

pytestmark = pytest.mark.anyio

SITE = "https://app.example.com"
EVIL = "https://evil.example.net"
DENIAL = {"websocket.http.response": {}}
LiveServer = Callable[..., AbstractContextManager[str]]


async def echo_once(scope: Scope, receive: Receive, send: Send) -> None:
    assert (await receive())["type"] == "websocket.connect"
    await send({"type": "websocket.accept"})
    message = await receive()
    await send({"type": "websocket.send", "text": message.get("text", "")})
    await send({"type": "websocket.close", "code": 1000})


def types(messages: list[Message]) -> list[str]:
    return [m["type"] for m in messages]


HELLO = [{"type": "websocket.receive", "text": "hi"}]


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({"origin": SITE}, id="allowed origin"),
        pytest.param({}, id="no origin (not a browser)"),
        pytest.param({"origin": "https://api.example.com", "host": "api.example.com"}, id="same"),
    ],
)
async def test_trusted_handshakes_reach_the_app(headers: dict[str, str]) -> None:
    middleware = CORSMiddleware(echo_once, allow_origins=[SITE])
    recorded = await run_asgi(
        middleware,
        websocket_scope(headers=headers, extensions=DENIAL),
        websocket_messages=HELLO,
    )
    assert types(recorded.messages) == ["websocket.accept", "websocket.send", "websocket.close"]


async def test_foreign_handshake_is_closed_before_accept_by_default_even_with_denial_responses(
    caplog: pytest.LogCaptureFixture,
) -> None:
    middleware = CORSMiddleware(echo_once, allow_origins=[SITE])
    with caplog.at_level(logging.DEBUG, logger="middlewares.cors"):
        recorded = await run_asgi(
            middleware, websocket_scope(headers={"origin": EVIL}, extensions=DENIAL)
        )
    assert f"WebSocket handshake from origin {EVIL!r} refused" in caplog.text
    assert recorded.messages == [{"type": "websocket.close", "code": 1008}]


async def test_foreign_handshake_gets_a_denial_response_when_asked() -> None:
    middleware = CORSMiddleware(echo_once, allow_origins=[SITE], websocket_denial_response=True)
    recorded = await run_asgi(
        middleware, websocket_scope(headers={"origin": EVIL}, extensions=DENIAL)
    )
    assert types(recorded.messages) == [
        "websocket.http.response.start",
        "websocket.http.response.body",
    ]
    assert recorded.status == 403
    assert recorded.body == b"WebSocket origin not allowed"


async def test_foreign_handshake_is_closed_when_the_server_has_no_denial_responses() -> None:
    middleware = CORSMiddleware(echo_once, allow_origins=[SITE])
    recorded = await run_asgi(middleware, websocket_scope(headers={"origin": EVIL}))
    assert recorded.messages == [{"type": "websocket.close", "code": 1008}]


async def test_handshake_check_uses_the_same_policy_as_http() -> None:
    middleware = CORSMiddleware(
        echo_once, allow_origins=["https://*.example.com"], allow_origin_predicate=lambda o: False
    )
    allowed = await run_asgi(
        middleware, websocket_scope(headers={"origin": SITE}), websocket_messages=HELLO
    )
    assert types(allowed.messages)[0] == "websocket.accept"
    refused = await run_asgi(middleware, websocket_scope(headers={"origin": "https://example.com"}))
    assert types(refused.messages) == ["websocket.close"]


async def test_client_leaving_before_the_refusal_gets_nothing_sent() -> None:
    async def gone() -> Message:
        return {"type": "websocket.disconnect", "code": 1001}

    middleware = CORSMiddleware(echo_once, allow_origins=[SITE])
    recorded = await run_asgi(middleware, websocket_scope(headers={"origin": EVIL}), receive=gone)
    assert recorded.messages == []


async def test_the_check_can_be_turned_off_or_excluded_by_path() -> None:
    for middleware, path in [
        (CORSMiddleware(echo_once, allow_origins=[SITE], check_websocket_origin=False), "/"),
        (
            CORSMiddleware(echo_once, allow_origins=[SITE], exclude_paths=["/public/*"]),
            "/public/ws",
        ),
    ]:
        recorded = await run_asgi(
            middleware,
            websocket_scope(path, headers={"origin": EVIL}),
            websocket_messages=HELLO,
        )
        assert types(recorded.messages)[0] == "websocket.accept"


async def test_any_origin_lets_every_handshake_through() -> None:
    middleware = CORSMiddleware(echo_once, allow_origins=["*"])
    recorded = await run_asgi(
        middleware, websocket_scope(headers={"origin": EVIL}), websocket_messages=HELLO
    )
    assert types(recorded.messages)[0] == "websocket.accept"


# ---- through uvicorn --------------------------------------------------------------------------


async def ws_echo(websocket: WebSocket) -> None:
    await websocket.accept()
    await websocket.send_text(await websocket.receive_text())
    await websocket.close()


def api(request: Request) -> PlainTextResponse:
    if request.query_params.get("fail"):
        raise LookupError("database down")
    return PlainTextResponse("data")


def served_app(**options: Any) -> Any:
    starlette = Starlette(
        routes=[Route("/api", api, methods=["GET", "PUT"]), WebSocketRoute("/ws", ws_echo)]
    )
    return CORSMiddleware(
        starlette,
        allow_origins=[SITE],
        allow_methods=["GET", "PUT"],
        allow_headers=["x-token"],
        **options,
    )


class _Errors(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.mark.parametrize("implementation", ["websockets-sansio", "wsproto"])
@pytest.mark.parametrize(
    ("denial_response", "body"),
    [
        pytest.param(False, b"", id="close before accept (default)"),
        pytest.param(True, b"WebSocket origin not allowed", id="denial response"),
    ],
)
def test_websocket_hijack_is_refused_over_the_wire(
    live_server: LiveServer, implementation: str, denial_response: bool, body: bytes
) -> None:
    app = served_app(websocket_denial_response=denial_response)
    with live_server(app, ws=implementation) as url:
        ws_url = url.replace("http://", "ws://") + "/ws"
        with connect(ws_url, origin=SITE) as socket:  # type: ignore[arg-type]
            socket.send("hello")
            assert socket.recv() == "hello"
        with pytest.raises(InvalidStatus) as refused:
            connect(ws_url, origin=EVIL)  # type: ignore[arg-type]
        assert refused.value.response.status_code == 403
        assert refused.value.response.body == body


def test_refusals_by_default_log_no_error_line_under_uvicorns_default_websockets(
    live_server: LiveServer,
) -> None:
    # uvicorn's websockets-sansio stack logs "ASGI callable returned without completing
    # handshake." at ERROR for every denial response: an attacker's loop would flood alerting.
    errors = _Errors()
    with live_server(served_app(), ws="websockets-sansio") as url:
        logger = logging.getLogger("uvicorn.error")
        logger.addHandler(errors)
        try:
            for _ in range(3):
                with pytest.raises(InvalidStatus):
                    connect(url.replace("http://", "ws://") + "/ws", origin=EVIL)  # type: ignore[arg-type]
            # A trusted handshake after the refusals: their log lines, if any, came before.
            with connect(url.replace("http://", "ws://") + "/ws", origin=SITE) as socket:  # type: ignore[arg-type]
                socket.send("hello")
                assert socket.recv() == "hello"
        finally:
            logger.removeHandler(errors)
    assert errors.records == []


def test_http_cors_over_the_wire(live_server: LiveServer) -> None:
    with live_server(served_app()) as url, httpx.Client(base_url=url) as client:
        preflight = client.options(
            "/api",
            headers={
                "origin": SITE,
                "access-control-request-method": "PUT",
                "access-control-request-headers": "X-Token,",
            },
        )
        assert (preflight.status_code, preflight.text) == (200, "OK")
        assert preflight.headers["access-control-allow-origin"] == SITE
        response = client.put("/api", headers={"origin": SITE})
        assert response.text == "data"
        assert response.headers["access-control-allow-origin"] == SITE
        assert response.headers["vary"] == "Origin"
        refused = client.get("/api", headers={"origin": EVIL})
        assert "access-control-allow-origin" not in refused.headers
        assert refused.headers["vary"] == "Origin"
        failed = client.get("/api?fail=1", headers={"origin": SITE})
        assert failed.status_code == 500
        assert failed.headers["access-control-allow-origin"] == SITE
