"""compose() stacks layers in the order Starlette uses, and middleware classes plug into the
frameworks' own registration APIs."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from litestar import Litestar, get
from litestar import Request as LitestarRequest
from litestar.middleware import DefineMiddleware
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from middlewares import Layer, compose
from middlewares._types import ASGIApp, Message, Receive, Scope, Send
from middlewares.testing import run_asgi

pytestmark = pytest.mark.anyio


class Tag:
    """Appends its name to an `x-order` response header, so the order layers ran is visible."""

    def __init__(self, app: ASGIApp, *, name: str) -> None:
        self.app = app
        self.name = name.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        scope.setdefault("order", []).append(self.name.decode())

        async def send_tagged(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), (b"x-order", self.name)]
            await send(message)

        await self.app(scope, receive, send_tagged)


async def endpoint(scope: Scope, receive: Receive, send: Send) -> None:
    body = ",".join(scope.get("order", [])).encode()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})


async def order_seen(app: ASGIApp) -> tuple[str, list[str]]:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://test"
    ) as client:
        response = await client.get("/")
    return response.text, response.headers.get_list("x-order")


def starlette_endpoint(request: Request) -> PlainTextResponse:
    return PlainTextResponse(",".join(request.scope.get("order", [])))


async def test_compose_matches_starlette_middleware_list() -> None:
    composed = compose(endpoint, Layer(Tag, name="outer"), Layer(Tag, name="inner"))
    starlette = Starlette(
        routes=[Route("/", starlette_endpoint)],
        middleware=[Middleware(Tag, name="outer"), Middleware(Tag, name="inner")],
    )
    ours = await order_seen(composed)
    theirs = await order_seen(starlette)
    assert ours == theirs == ("outer,inner", ["inner", "outer"])


async def test_add_middleware_prepends() -> None:
    app = Starlette(routes=[Route("/", starlette_endpoint)])
    app.add_middleware(Tag, name="first-added")
    app.add_middleware(Tag, name="last-added")
    text, _ = await order_seen(app)
    assert text == "last-added,first-added"


async def test_fastapi_add_middleware() -> None:
    app = FastAPI()

    @app.get("/")
    def read(request: Request) -> str:
        return ",".join(request.scope.get("order", []))

    app.add_middleware(Tag, name="fastapi")
    assert (await order_seen(app))[0] == '"fastapi"'


async def test_litestar_define_middleware_passes_app_by_keyword() -> None:
    @get("/", sync_to_thread=False)
    def read(request: LitestarRequest[Any, Any, Any]) -> str:
        return ",".join(request.scope.get("order", []))  # type: ignore[attr-defined]

    app = Litestar(
        route_handlers=[read],
        middleware=[DefineMiddleware(Tag, name="outer"), DefineMiddleware(Tag, name="inner")],
    )
    assert (await order_seen(app))[0] == "outer,inner"


async def test_compose_without_layers_is_the_app() -> None:
    assert compose(endpoint) is endpoint
    assert (await run_asgi(compose(endpoint, Layer(Tag, name="only")))).body == b"only"


def test_layer_repr_and_validation() -> None:
    assert repr(Layer(dict, 1, name="x")) == "Layer(dict, 1, name='x')"
    with pytest.raises(TypeError, match="middleware class"):
        Layer("Tag")
