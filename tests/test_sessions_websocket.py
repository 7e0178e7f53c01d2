"""Sessions over WebSockets: readable in the handshake, sent with the accept, never dropped."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from middlewares._types import ASGIApp, Receive, Scope, Send
from middlewares.sessions import Session, SessionError, SessionMiddleware
from middlewares.stores import MemoryStore
from middlewares.testing import Recorded, run_asgi, websocket_scope

from .stores.helpers import Clock, app_doing, call, cookie_pair, result

pytestmark = [
    pytest.mark.anyio,
    # Short keys keep these tests readable; the warning itself is tested in test_sessions_compat.
    pytest.mark.filterwarnings("ignore:secret_key has a key shorter:UserWarning"),
]

Action = Callable[[Session], Any]


def socket_app(before: Action | None = None, after: Action | None = None) -> ASGIApp:
    """Accept the socket, running ``before`` in the handshake and ``after`` once open."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        assert (await receive())["type"] == "websocket.connect"
        if before is not None:
            before(scope["session"])
        await send({"type": "websocket.accept"})
        if after is not None:
            after(scope["session"])
        await send({"type": "websocket.close", "code": 1000})

    return app


def read(session: Session) -> dict[str, Any]:
    return dict(session)


def put_user(session: Session) -> None:
    session["user"] = "ada"


async def connect(app: ASGIApp, cookie: str | None = None) -> Recorded:
    headers = {} if cookie is None else {"cookie": cookie}
    return await run_asgi(app, websocket_scope(headers=headers))


def accept_cookies(recorded: Recorded) -> list[str]:
    (accept,) = recorded.of_type("websocket.accept")
    return [v.decode() for k, v in accept.get("headers", ()) if k == b"set-cookie"]


class Setup:
    def __init__(self, store: MemoryStore | None = None) -> None:
        self.options: dict[str, Any] = {"secret_key": "secret", "clock": Clock()}
        if store is not None:
            self.options["store"] = store

    def ws(self, before: Action | None = None, after: Action | None = None) -> SessionMiddleware:
        return SessionMiddleware(socket_app(before, after), **self.options)

    def http(self, action: Action | None = None) -> SessionMiddleware:
        return SessionMiddleware(app_doing(action), **self.options)

    async def login(self) -> str:
        return cookie_pair(await call(self.http(put_user)))


@pytest.fixture(params=["cookie", "memory store"])
def setup(request: pytest.FixtureRequest) -> Setup:
    return Setup(MemoryStore() if request.param == "memory store" else None)


async def test_the_session_is_readable_during_the_handshake(setup: Setup) -> None:
    cookie = await setup.login()
    seen: list[Any] = []
    recorded = await connect(setup.ws(before=lambda s: seen.append(dict(s))), cookie)
    assert seen == [{"user": "ada"}]
    assert accept_cookies(recorded) == []
    assert "headers" not in recorded.of_type("websocket.accept")[0]


async def test_changes_before_accept_are_sent_with_the_accept(setup: Setup) -> None:
    recorded = await connect(setup.ws(before=put_user))
    (header,) = accept_cookies(recorded)
    cookie = header.split(";")[0]
    assert result(await call(setup.http(read), cookie)) == {"user": "ada"}


async def test_changes_after_accept_are_saved_in_a_store() -> None:
    setup = Setup(MemoryStore())
    cookie = await setup.login()
    await connect(setup.ws(after=lambda s: s.update(seen="chat")), cookie)
    assert result(await call(setup.http(read), cookie)) == {"user": "ada", "seen": "chat"}


async def test_clearing_after_accept_deletes_the_stored_session() -> None:
    store = MemoryStore()
    setup = Setup(store)
    cookie = await setup.login()
    await connect(setup.ws(after=lambda s: s.clear()), cookie)
    assert len(store) == 0
    assert result(await call(setup.http(read), cookie)) == {}


async def test_changes_after_accept_raise_for_cookie_sessions() -> None:
    setup = Setup()
    cookie = await setup.login()
    with pytest.raises(SessionError, match=r"changed after websocket\.accept"):
        await connect(setup.ws(after=lambda s: s.update(seen="chat")), cookie)


async def test_a_new_session_after_accept_raises_even_with_a_store() -> None:
    setup = Setup(MemoryStore())
    with pytest.raises(SessionError, match=r"changed after websocket\.accept"):
        await connect(setup.ws(after=put_user))


async def test_reads_after_accept_need_nothing(setup: Setup) -> None:
    cookie = await setup.login()
    recorded = await connect(setup.ws(after=read), cookie)
    assert recorded.of_type("websocket.close")


async def test_a_denial_response_carries_the_cookie_and_vary() -> None:
    setup = Setup()

    async def deny(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        put_user(scope["session"])
        await send({"type": "websocket.http.response.start", "status": 403, "headers": []})
        await send({"type": "websocket.http.response.body", "body": b"no"})

    scope = websocket_scope(extensions={"websocket.http.response": {}})
    recorded = await run_asgi(SessionMiddleware(deny, **setup.options), scope)
    assert recorded.status == 403
    assert recorded.header("vary") == "Cookie"
    assert recorded.header(
        "set-cookie",
    ).startswith("session=")  # type: ignore[union-attr]


async def test_default_ids_are_long_and_random() -> None:
    store = MemoryStore()
    app = SessionMiddleware(app_doing(put_user), secret_key="s", store=store)
    first = cookie_pair(await call(app))
    second = cookie_pair(await call(app))
    assert first != second
    session_id = first.removeprefix("session=").split(".")[0]
    assert len(session_id) == 43
    assert await store.load(session_id) is not None


def test_uvicorn_delivers_the_handshake_cookie_to_a_real_client(live_server: Any) -> None:
    from starlette.applications import Starlette
    from starlette.routing import WebSocketRoute
    from starlette.websockets import WebSocket
    from websockets.sync.client import connect as ws_connect

    async def chat(websocket: WebSocket) -> None:
        websocket.session["visits"] = websocket.session.get("visits", 0) + 1
        await websocket.accept()
        await websocket.send_text(str(websocket.session["visits"]))
        await websocket.close()

    app = SessionMiddleware(Starlette(routes=[WebSocketRoute("/ws", chat)]), secret_key="s")
    with live_server(app) as url:
        ws_url = url.replace("http", "ws") + "/ws"
        with ws_connect(ws_url) as socket:
            assert socket.recv() == "1"
            cookie = socket.response.headers["set-cookie"].split(";")[0]
        with ws_connect(ws_url, additional_headers={"Cookie": cookie}) as socket:
            assert socket.recv() == "2"
