"""A real browser (headless Chromium) against CSRFMiddleware: the app on 127.0.0.1, an attacker's
page on ``localhost`` (another site); both are secure contexts, so Chromium sends Fetch Metadata."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

from middlewares._types import ASGIApp, Message, Receive, Scope, Send
from middlewares.csrf import CSRFMiddleware

LiveServer = Callable[..., AbstractContextManager[str]]

FORM = """<!doctype html><title>form</title>
<form method="post" action="{action}"><input name="amount" value="100">
<button id="send">send</button></form>"""

SOCKET = """async (url) => new Promise((resolve) => {
    const socket = new WebSocket(url);
    socket.onmessage = (event) => resolve(`message: ${event.data}`);
    socket.onerror = () => resolve("refused");
    setTimeout(() => resolve("timeout"), 5000);
})"""

FETCH = """async (url) => {
    try {
        const response = await fetch(url, {method: "POST", mode: "no-cors", body: "amount=1",
            headers: {"content-type": "application/x-www-form-urlencoded"}});
        return `${response.type} ${response.status}`;
    } catch (error) {
        return `failed: ${error.name}`;
    }
}"""


def bank(hits: list[str], answers: list[int] | None = None) -> ASGIApp:
    async def transfer(request: Request) -> PlainTextResponse:
        hits.append((await request.body()).decode())
        return PlainTextResponse("transferred")

    def form(request: Request) -> HTMLResponse:
        return HTMLResponse(FORM.format(action="/transfer"))

    async def socket(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_text("hello")
        await websocket.close()

    app = Starlette(
        routes=[
            Route("/", form),
            Route("/transfer", transfer, methods=["POST"]),
            WebSocketRoute("/ws", socket),
        ]
    )
    guarded = CSRFMiddleware(app)
    if answers is None:
        return guarded

    async def recording(scope: Scope, receive: Receive, send: Send) -> None:
        async def send_recorded(message: Message) -> None:
            if message["type"] == "http.response.start":
                answers.append(message["status"])
            await send(message)

        await guarded(scope, receive, send_recorded)

    return recording


def attacker(target: str) -> Starlette:
    def page(request: Request) -> HTMLResponse:
        return HTMLResponse(FORM.format(action=f"{target}/transfer"))

    return Starlette(routes=[Route("/", page)])


def on_localhost(url: str) -> str:
    return url.replace("127.0.0.1", "localhost")


def test_the_apps_own_form_posts(page: Any, live_server: LiveServer) -> None:
    hits: list[str] = []
    with live_server(bank(hits)) as site:
        page.goto(site)
        page.click("#send")
        page.wait_for_load_state()
        assert page.inner_text("body") == "transferred"
    assert hits == ["amount=100"]


def test_a_cross_site_form_post_is_refused(page: Any, live_server: LiveServer) -> None:
    hits: list[str] = []
    with live_server(bank(hits)) as site, live_server(attacker(site)) as evil:
        page.goto(on_localhost(evil))
        page.click("#send")
        page.wait_for_load_state()
        assert page.inner_text("body").startswith("Forbidden: cross-site request")
    assert hits == []


def test_a_cross_site_fetch_is_refused_before_the_app(page: Any, live_server: LiveServer) -> None:
    hits: list[str] = []
    answers: list[int] = []
    with live_server(bank(hits, answers)) as site, live_server(attacker(site)) as evil:
        page.goto(on_localhost(evil))
        assert page.evaluate(FETCH, f"{site}/transfer") == "opaque 0"  # sent, unreadable
        assert answers == [403]  # the browser sent it; the middleware refused it
        page.goto(site)
        # The same request from the app's own page goes through.
        assert page.evaluate(FETCH, f"{site}/transfer") == "basic 200"
    assert hits == ["amount=1"]


def test_websockets_connect_from_the_same_origin_only(page: Any, live_server: LiveServer) -> None:
    with live_server(bank([])) as site, live_server(attacker(site)) as evil:
        ws_url = site.replace("http://", "ws://") + "/ws"
        page.goto(site)
        assert page.evaluate(SOCKET, ws_url) == "message: hello"
        page.goto(on_localhost(evil))
        assert page.evaluate(SOCKET, ws_url) == "refused"
