"""RateLimitMiddleware over the wire, through a real uvicorn: refusals and headers as a client
receives them, a streamed body intact, WebSocket handshakes refused, and hostile
headers that never produce a 500."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, StreamingResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from middlewares import RateLimitMiddleware
from middlewares.rate_limit import header_key
from middlewares.stores import MemoryRateLimitStore
from middlewares.testing import http_scope, run_asgi

from .test_rate_limit import Clock

LiveServer = Callable[..., AbstractContextManager[str]]

pytestmark = pytest.mark.server


async def home(request: Request) -> PlainTextResponse:
    return PlainTextResponse("home")


async def stream(request: Request) -> StreamingResponse:
    async def parts() -> Any:
        for n in range(3):
            yield f"part {n}\n".encode()

    return StreamingResponse(parts(), media_type="text/plain")


async def echo(websocket: WebSocket) -> None:
    await websocket.accept()
    await websocket.send_text(await websocket.receive_text())
    await websocket.close()


def served_app() -> RateLimitMiddleware:
    inner = Starlette(routes=[Route("/", home), Route("/stream", stream)])
    return RateLimitMiddleware(inner, application_limits=["3/minute"])


def test_refusals_and_headers_over_the_wire(live_server: LiveServer) -> None:
    with live_server(served_app()) as url:
        responses = [httpx.get(url + "/") for _ in range(3)]
        refused = httpx.get(url + "/")
    assert [r.status_code for r in responses] == [200, 200, 200]
    assert responses[0].headers["ratelimit-policy"] == '"3/minute";q=3;w=60'
    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) >= 1
    assert refused.text == "Too Many Requests"


def test_a_streamed_body_arrives_whole_with_the_headers(live_server: LiveServer) -> None:
    with live_server(served_app()) as url, httpx.stream("GET", url + "/stream") as response:
        body = b"".join(response.iter_bytes())
        assert response.headers["ratelimit"].startswith('"3/minute";r=2;')
    assert body == b"part 0\npart 1\npart 2\n"


def served_websocket(**options: Any) -> RateLimitMiddleware:
    return RateLimitMiddleware(
        Starlette(routes=[WebSocketRoute("/ws", echo)]), application_limits=["1/minute"], **options
    )


@pytest.mark.parametrize(
    ("options", "status"),
    [
        pytest.param({}, 403, id="closed before accept"),
        pytest.param({"websocket_denial_response": True}, 429, id="denial response"),
    ],
)
def test_websocket_handshakes_over_the_limit_are_refused_over_the_wire(
    live_server: LiveServer, options: dict[str, Any], status: int
) -> None:
    with live_server(served_websocket(**options), ws="wsproto") as url:
        ws_url = url.replace("http://", "ws://") + "/ws"
        with connect(ws_url) as socket:
            socket.send("hello")
            assert socket.recv() == "hello"
        with pytest.raises(InvalidStatus) as refused:
            connect(ws_url)
    assert refused.value.response.status_code == status
    if status == 429:
        assert int(refused.value.response.headers["retry-after"]) >= 1


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({"x-api-key": "k" * 60_000}, id="huge api key"),
        pytest.param({"x-api-key": "caf\u00e9 \u00ff".encode("latin-1")}, id="non-ascii api key"),
        pytest.param([("x-api-key", "a"), ("x-api-key", "b")], id="duplicated api key"),
        pytest.param({"x-forwarded-for": "not an address, ::zz, 999.1.1.1"}, id="garbage xff"),
    ],
)
def test_hostile_headers_are_counted_never_a_500(live_server: LiveServer, headers: Any) -> None:
    app = RateLimitMiddleware(
        Starlette(routes=[Route("/", home)]),
        application_limits=["2/minute"],
        key_func=header_key("x-api-key"),
    )
    with live_server(app, h11_max_incomplete_event_size=200_000) as url:
        statuses = [httpx.get(url + "/", headers=headers).status_code for _ in range(3)]
    assert statuses == [200, 200, 429]


@pytest.mark.anyio
@given(
    st.lists(st.tuples(st.binary(max_size=40), st.binary(max_size=300)), max_size=8),
    st.text(max_size=60),
)
async def test_any_headers_and_client_string_get_200_or_429(
    headers: list[tuple[bytes, bytes]], client: str
) -> None:
    app = RateLimitMiddleware(
        home_asgi,
        application_limits=["1/minute"],
        key_func=header_key("x-api-key"),
        store=MemoryRateLimitStore(clock=Clock()),
    )
    for expected in (200, 429):
        scope = http_scope(client=(client, 1))
        scope["headers"] = [(k.lower(), v) for k, v in headers]
        assert (await run_asgi(app, scope)).status == expected


async def home_asgi(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"home"})
