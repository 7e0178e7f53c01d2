"""CSRFMiddleware on WebSocket handshakes (trap 27), and over the wire through uvicorn: the
scheme a trusted proxy forwarded (trap 20), a refused handshake, a large streamed form."""

from __future__ import annotations

import hashlib
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
from middlewares.csrf import CSRFMiddleware, csrf_token
from middlewares.sessions import SessionMiddleware
from middlewares.testing import run_asgi, websocket_scope

pytestmark = pytest.mark.anyio

HOST = "app.example.com"
DENIAL = {"websocket.http.response": {}}
LiveServer = Callable[..., AbstractContextManager[str]]


async def echo_once(scope: Scope, receive: Receive, send: Send) -> None:
    assert (await receive())["type"] == "websocket.connect"
    await send({"type": "websocket.accept"})
    await send({"type": "websocket.close", "code": 1000})


def types(messages: list[Message]) -> list[str]:
    return [m["type"] for m in messages]


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({"origin": "http://app.example.com"}, id="same origin, no Sec-Fetch-Site"),
        pytest.param(
            {"origin": "http://app.example.com", "sec-fetch-site": "same-origin"}, id="same-origin"
        ),
        pytest.param({}, id="no Origin (not a browser)"),
    ],
)
async def test_same_origin_handshakes_reach_the_app(headers: dict[str, str]) -> None:
    scope = websocket_scope(headers={"host": HOST, **headers}, extensions=DENIAL)
    recorded = await run_asgi(CSRFMiddleware(echo_once), scope)
    assert types(recorded.messages) == ["websocket.accept", "websocket.close"]


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({"origin": "https://evil.example", "sec-fetch-site": "cross-site"}, id="SFS"),
        pytest.param({"origin": "https://evil.example"}, id="foreign Origin"),
        pytest.param({"origin": "null"}, id="null Origin"),
    ],
)
async def test_cross_site_handshakes_are_refused_before_accept_trap_27(
    headers: dict[str, str],
) -> None:
    scope = websocket_scope(headers={"host": HOST, **headers}, extensions=DENIAL)
    recorded = await run_asgi(CSRFMiddleware(echo_once), scope)
    assert recorded.messages == [{"type": "websocket.close", "code": 1008}]
    middleware = CSRFMiddleware(echo_once, websocket_denial_response=True)
    recorded = await run_asgi(middleware, scope)
    assert types(recorded.messages) == [
        "websocket.http.response.start",
        "websocket.http.response.body",
    ]
    assert recorded.status == 403
    assert recorded.body.startswith(b"Forbidden: ")


async def test_without_denial_responses_the_refusal_is_a_close_before_accept() -> None:
    scope = websocket_scope(headers={"host": HOST, "origin": "https://evil.example"})
    recorded = await run_asgi(CSRFMiddleware(echo_once, websocket_denial_response=True), scope)
    assert recorded.messages == [{"type": "websocket.close", "code": 1008}]


async def test_websocket_check_can_be_turned_off() -> None:
    scope = websocket_scope(headers={"host": HOST, "origin": "https://evil.example"})
    recorded = await run_asgi(CSRFMiddleware(echo_once, check_websocket=False), scope)
    assert types(recorded.messages)[0] == "websocket.accept"


async def test_problem_details_refusal_of_a_handshake() -> None:
    scope = websocket_scope(headers={"host": HOST, "origin": "null"}, extensions=DENIAL)
    middleware = CSRFMiddleware(echo_once, problem_details=True, websocket_denial_response=True)
    recorded = await run_asgi(middleware, scope)
    assert recorded.header("content-type") == "application/problem+json"


# ---- through uvicorn --------------------------------------------------------------------------


async def socket(websocket: WebSocket) -> None:
    await websocket.accept()
    await websocket.send_text("hello")
    await websocket.close()


async def form(request: Request) -> PlainTextResponse:
    if request.method == "GET":
        return PlainTextResponse(csrf_token(request.scope))
    body = await request.body()
    return PlainTextResponse(f"{len(body)} {hashlib.sha256(body).hexdigest()}")


def served_app(**options: Any) -> Any:
    starlette = Starlette(
        routes=[Route("/form", form, methods=["GET", "POST"]), WebSocketRoute("/ws", socket)]
    )
    return SessionMiddleware(
        CSRFMiddleware(starlette, **options), secret_key="session-secret-of-at-least-32-bytes"
    )


@pytest.mark.server
@pytest.mark.parametrize(
    ("forwarded_allow_ips", "status"),
    [
        pytest.param("127.0.0.1", 200, id="trusted proxy: scheme upgraded to https"),
        pytest.param("10.9.9.9", 403, id="untrusted peer: scheme stays http"),
    ],
)
def test_tls_terminating_proxy_origin_check_trap_20(
    live_server: LiveServer, forwarded_allow_ips: str, status: int
) -> None:
    config = {"proxy_headers": True, "forwarded_allow_ips": forwarded_allow_ips}
    with live_server(served_app(), **config) as url, httpx.Client(base_url=url) as client:
        host = url.removeprefix("http://")
        response = client.post(
            "/form",
            headers={"origin": f"https://{host}", "x-forwarded-proto": "https"},
            data={"a": "1"},
        )
        assert response.status_code == status


@pytest.mark.server
def test_cross_site_websocket_is_refused_over_the_wire(live_server: LiveServer) -> None:
    with live_server(served_app()) as url:
        ws_url = url.replace("http://", "ws://") + "/ws"
        with connect(ws_url, origin=url) as client:  # type: ignore[arg-type]
            assert client.recv() == "hello"
        with pytest.raises(InvalidStatus) as refused:
            connect(ws_url, origin="https://evil.example")  # type: ignore[arg-type]
        assert refused.value.response.status_code == 403


@pytest.mark.server
def test_token_after_a_large_file_streams_through_uvicorn(live_server: LiveServer) -> None:
    with (
        live_server(
            served_app(secret="a-csrf-secret-of-at-least-32-bytes", require_token=True)
        ) as url,
        httpx.Client(base_url=url) as client,
    ):
        token = client.get("/form").text
        upload = b"\x00" * (5 * 1024 * 1024)
        boundary = b"b0undary"
        body = (
            b"--" + boundary + b'\r\nContent-Disposition: form-data; name="upload"; '
            b'filename="big.bin"\r\nContent-Type: application/octet-stream\r\n\r\n'
            + upload
            + b"\r\n--"
            + boundary
            + b'\r\nContent-Disposition: form-data; name="csrftoken"'
            b"\r\n\r\n" + token.encode() + b"\r\n--" + boundary + b"--\r\n"
        )
        response = client.post(
            "/form",
            headers={
                "origin": url,
                "content-type": "multipart/form-data; boundary=" + boundary.decode(),
            },
            # A generator: sent chunked, the token after the 5 MB file part.
            content=(body[i : i + 65536] for i in range(0, len(body), 65536)),
        )
        assert response.status_code == 200, response.text
        # The app read the very bytes the client sent.
        assert response.text == f"{len(body)} {hashlib.sha256(body).hexdigest()}"
