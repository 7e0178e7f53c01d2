"""The edge of an app: ProxyHeaders outermost, then TrustedHost, HTTPSRedirect, CORS, sessions,
request ids and timing, in process and through uvicorn behind a real forwarding proxy process."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from middlewares import (
    CORSMiddleware,
    HTTPSRedirectMiddleware,
    ProxyHeadersMiddleware,
    RequestIDMiddleware,
    RequestTiming,
    SessionMiddleware,
    TimingMiddleware,
    TrustedHostMiddleware,
    get_request_id,
)
from middlewares._types import ASGIApp, Receive, Scope, Send
from middlewares.compose import Layer, compose
from middlewares.proxy_headers import ORIGINAL_KEY
from middlewares.stores import MemoryStore
from middlewares.testing import http_scope, run_asgi, websocket_scope

from .servers import free_port, serve

ROOT = Path(__file__).resolve().parent.parent
ORIGIN = "https://web.example.com"


def build(timings: list[RequestTiming], trusted: list[str]) -> ASGIApp:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        scope["session"]["seen"] = True
        body = json.dumps(
            {
                "client": scope["client"][0],
                "scheme": scope["scheme"],
                "host": dict(scope["headers"]).get(b"host", b"").decode(),
                "request_id": get_request_id(),
            }
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": body})

    return compose(
        app,
        Layer(ProxyHeadersMiddleware, trusted_hosts=trusted),
        Layer(TrustedHostMiddleware, allowed_hosts=["app.example.com", "127.0.0.1"]),
        Layer(HTTPSRedirectMiddleware),
        Layer(CORSMiddleware, allow_origins=[ORIGIN], allow_credentials=True),
        Layer(
            SessionMiddleware, secret_key="a-session-secret-of-at-least-32-bytes", https_only="auto"
        ),
        Layer(RequestIDMiddleware, trusted_proxies=trusted),
        Layer(TimingMiddleware, on_timing=timings.append),
    )


@pytest.mark.anyio
async def test_behind_a_tls_terminating_proxy_every_layer_sees_the_client() -> None:
    timings: list[RequestTiming] = []
    app = build(timings, ["10.0.0.0/8"])
    transport = httpx.ASGITransport(app=app, client=("10.0.0.1", 4000))
    headers = {
        "host": "app.example.com",
        "origin": ORIGIN,
        "x-forwarded-for": "6.6.6.6, 203.0.113.7",
        "x-forwarded-proto": "https",
        "x-request-id": "from-the-proxy",
    }
    async with httpx.AsyncClient(transport=transport, base_url="http://app.example.com") as client:
        response = await client.get("/", headers=headers)
    assert response.status_code == 200, "no redirect loop: the proxy said https"
    assert response.json() == {
        "client": "203.0.113.7",
        "scheme": "https",
        "host": "app.example.com",
        "request_id": "from-the-proxy",  # the proxy, not the client, is asked about trust
    }
    assert "Secure" in response.headers["set-cookie"]
    assert response.headers["access-control-allow-origin"] == ORIGIN
    assert timings[0].scope["client"] == ("203.0.113.7", 0)
    assert timings[0].scope[ORIGINAL_KEY]["client"] == ("10.0.0.1", 4000)


@pytest.mark.anyio
async def test_plain_http_through_the_proxy_is_redirected_once() -> None:
    app = build([], ["10.0.0.0/8"])
    transport = httpx.ASGITransport(app=app, client=("10.0.0.1", 4000))
    headers = {"x-forwarded-for": "203.0.113.7", "x-forwarded-proto": "http"}
    async with httpx.AsyncClient(transport=transport, base_url="http://app.example.com") as client:
        response = await client.get("/a?b=1", headers=headers)
    assert response.status_code == 307
    assert response.headers["location"] == "https://app.example.com/a?b=1"


@pytest.mark.anyio
async def test_a_direct_client_cannot_claim_https_or_another_address() -> None:
    app = build([], ["10.0.0.0/8"])
    transport = httpx.ASGITransport(app=app, client=("198.51.100.1", 4000))
    headers = {"x-forwarded-for": "10.0.0.9", "x-forwarded-proto": "https", "x-request-id": "mine"}
    async with httpx.AsyncClient(transport=transport, base_url="http://app.example.com") as client:
        response = await client.get("/", headers=headers)
    assert response.status_code == 307


@pytest.mark.anyio
async def test_a_forwarded_host_is_checked_by_trusted_host() -> None:
    app = ProxyHeadersMiddleware(
        TrustedHostMiddleware(build([], ["10.0.0.0/8"]), allowed_hosts=["app.example.com"]),
        trusted_hosts=["10.0.0.0/8"],
        x_host=1,
    )
    transport = httpx.ASGITransport(app=app, client=("10.0.0.1", 4000))
    async with httpx.AsyncClient(transport=transport, base_url="http://10.0.0.2") as client:
        good = await client.get(
            "/", headers={"x-forwarded-host": "app.example.com", "x-forwarded-proto": "https"}
        )
        bad = await client.get(
            "/", headers={"x-forwarded-host": "evil.example", "x-forwarded-proto": "https"}
        )
    assert good.status_code == 200
    assert bad.status_code == 400


# --- Through uvicorn, behind a forwarding proxy in its own process ------------------------------


@contextmanager
def forwarding_proxy(upstream: str, proto: str) -> Iterator[str]:
    port = free_port()
    upstream_port = upstream.rsplit(":", 1)[1]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.forwarding_proxy", str(port), upstream_port, proto, "60"],
        cwd=ROOT,
        env=env,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError("the forwarding proxy did not start") from None
                time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(10)


def client_from(address: str, base_url: str) -> httpx.Client:
    transport = httpx.HTTPTransport(local_address=address)
    return httpx.Client(transport=transport, base_url=base_url, follow_redirects=False)


def test_live_the_app_sees_the_client_behind_a_real_proxy_hop() -> None:
    timings: list[RequestTiming] = []
    # Only the proxy (127.0.0.1) is trusted; the browser connects from 127.0.0.2.
    with serve(build(timings, ["127.0.0.1"]), proxy_headers=False) as upstream:
        with (
            forwarding_proxy(upstream, "https") as proxy,
            client_from("127.0.0.2", proxy) as client,
        ):
            response = client.get("/", headers={"host": "127.0.0.1", "x-forwarded-for": "6.6.6.6"})
        with client_from("127.0.0.2", upstream) as direct:
            spoofed = direct.get("/", headers={"host": "127.0.0.1", "x-forwarded-proto": "https"})
    assert response.status_code == 200
    assert response.json()["client"] == "127.0.0.2"
    assert response.json()["scheme"] == "https"
    assert "Secure" in response.headers["set-cookie"]
    assert spoofed.status_code == 307
    assert spoofed.headers["location"] == "https://127.0.0.1/"
    assert timings[0].scope["client"][0] == "127.0.0.2"


def test_live_plain_http_at_the_proxy_redirects_without_a_loop() -> None:
    with (
        serve(build([], ["127.0.0.1"]), proxy_headers=False) as upstream,
        forwarding_proxy(upstream, "http") as proxy,
        client_from("127.0.0.2", proxy) as client,
    ):
        response = client.get("/x", headers={"host": "app.example.com"})
    assert response.status_code == 307
    assert response.headers["location"] == "https://app.example.com/x"


@pytest.mark.anyio
async def test_the_example_builds_urls_for_the_client() -> None:
    from examples.proxies import app

    transport = httpx.ASGITransport(app=app, client=("10.0.0.3", 5000))
    headers = {
        "x-forwarded-for": "203.0.113.7",
        "x-forwarded-proto": "https",
        "x-forwarded-host": "shop.example.com",
        "x-forwarded-prefix": "/shop",
    }
    async with httpx.AsyncClient(transport=transport, base_url="http://10.0.0.2:8000") as client:
        seen = (await client.get("/", headers=headers)).json()
        probe = await client.get("/healthz")
        spoofed = await client.get(
            "/", headers={"host": "evil.example", "x-forwarded-proto": "https"}
        )
    assert seen == {
        "client": "203.0.113.7",
        "scheme": "https",
        "url": "https://shop.example.com/shop/",
        "root_path": "/shop",
        "login": "https://shop.example.com/shop/login",
    }
    assert probe.status_code == 200
    assert spoofed.status_code == 400


@pytest.mark.anyio
async def test_t17_outermost_the_error_handler_sees_the_client() -> None:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    logged: list[str] = []

    def crash(request: Request) -> PlainTextResponse:
        raise RuntimeError("boom")

    def on_error(request: Request, exc: Exception) -> PlainTextResponse:
        logged.append(request.client.host if request.client else "")
        return PlainTextResponse("sorry", status_code=500)

    inner = Starlette(routes=[Route("/", crash)], exception_handlers={500: on_error})
    app = ProxyHeadersMiddleware(inner, trusted_hosts=["10.0.0.0/8"])
    transport = httpx.ASGITransport(app=app, client=("10.0.0.1", 1), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://a") as client:
        response = await client.get("/", headers={"x-forwarded-for": "203.0.113.7"})
    assert response.status_code == 500
    assert logged == ["203.0.113.7"]


async def _session_cookie(scope: Scope, **options: object) -> list[str]:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        scope["session"]["n"] = 1
        if scope["type"] == "websocket":
            await receive()
            await send({"type": "websocket.accept"})
            await send({"type": "websocket.close", "code": 1000})
            return
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    middleware = SessionMiddleware(
        app, secret_key="a-session-secret-of-at-least-32-bytes", https_only="auto", **options
    )
    result = await run_asgi(middleware, scope)
    start = result.of_type("http.response.start", "websocket.accept")[0]
    return [v.decode() for k, v in start.get("headers", []) if k == b"set-cookie"]


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("scope", "secure"),
    [
        pytest.param(http_scope(), False, id="http"),
        pytest.param(http_scope(scheme="https"), True, id="https"),
        pytest.param(websocket_scope(scheme="wss"), True, id="wss handshake"),
        pytest.param(websocket_scope(), False, id="ws handshake"),
    ],
)
async def test_session_cookie_is_secure_on_resolved_https(scope: Scope, secure: bool) -> None:
    for options in ({}, {"store": MemoryStore()}):
        (cookie,) = await _session_cookie(dict(scope), **options)
        assert cookie.endswith("; Secure") is secure
        assert cookie.count("Secure") == int(secure)


def test_https_only_must_be_a_bool_or_auto() -> None:
    with pytest.raises(ValueError, match="https_only must be True, False or 'auto'"):
        SessionMiddleware(
            lambda *a: None, secret_key="a-session-secret-of-at-least-32-bytes", https_only="yes"
        )  # type: ignore[arg-type]


@pytest.mark.parametrize("implementation", ["websockets-sansio", "wsproto"])
def test_live_websocket_refusals_over_the_wire(implementation: str) -> None:
    from starlette.applications import Starlette
    from starlette.routing import WebSocketRoute
    from starlette.websockets import WebSocket
    from websockets.exceptions import InvalidStatus
    from websockets.sync.client import connect

    async def echo(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_text(await websocket.receive_text())
        await websocket.close()

    inner = Starlette(routes=[WebSocketRoute("/ws", echo)])
    hosts = TrustedHostMiddleware(inner, allowed_hosts=["127.0.0.1"])
    with serve(hosts, ws=implementation) as url:
        port = url.rsplit(":", 1)[1]
        with connect(f"ws://127.0.0.1:{port}/ws") as socket:
            socket.send("hi")
            assert socket.recv() == "hi"
        with pytest.raises(InvalidStatus) as refused:
            connect(f"ws://localhost:{port}/ws")
        assert refused.value.response.status_code == 403  # closed before accept
    denying = TrustedHostMiddleware(
        inner, allowed_hosts=["127.0.0.1"], websocket_denial_response=True
    )
    with serve(denying, ws=implementation) as url:
        port = url.rsplit(":", 1)[1]
        with pytest.raises(InvalidStatus) as refused:
            connect(f"ws://localhost:{port}/ws")
        assert refused.value.response.status_code == 400
        assert refused.value.response.body == b"Invalid host header"
    with serve(HTTPSRedirectMiddleware(inner), ws=implementation) as url:
        with pytest.raises(InvalidStatus) as plain:
            connect(url.replace("http://", "ws://") + "/ws")
        assert plain.value.response.status_code == 403
        assert "location" not in plain.value.response.headers
