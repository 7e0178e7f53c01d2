"""TimingMiddleware around real frameworks: route templates from Starlette's router (mounts
included) and Litestar's, and metrics added from a sync endpoint running in a thread."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from litestar import Litestar, get
from litestar.params import FromPath
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Mount, Route

from middlewares.testing import http_scope, run_asgi
from middlewares.timing import RequestTiming, TimingMiddleware, add_timing, timing

pytestmark = pytest.mark.anyio


def starlette_app() -> Starlette:
    def user(request: Request) -> PlainTextResponse:  # sync: Starlette runs it in a thread
        with timing("db", desc="users query"):
            pass
        return PlainTextResponse(f"user {request.path_params['user_id']}")

    async def item(request: Request) -> PlainTextResponse:
        add_timing("cache", desc="hit")
        return PlainTextResponse("item")

    async def boom(request: Request) -> PlainTextResponse:
        raise RuntimeError("handler failed")

    return Starlette(
        routes=[
            Route("/users/{user_id:int}", user),
            Route("/boom", boom),
            Mount("/api", routes=[Route("/items/{item_id}", item)]),
        ]
    )


@pytest.mark.parametrize(
    ("path", "template", "status"),
    [
        pytest.param("/users/42", "/users/{user_id}", 200, id="route"),
        pytest.param("/api/items/7", "/api/items/{item_id}", 200, id="route inside a mount"),
        pytest.param("/nowhere/1", None, 404, id="no route matched"),
    ],
)
async def test_starlette_route_templates(path: str, template: str | None, status: int) -> None:
    seen: list[RequestTiming] = []
    app = TimingMiddleware(starlette_app(), on_timing=seen.append)
    result = await run_asgi(app, http_scope("GET", path))
    assert result.status == status
    [record] = seen
    assert (record.template, record.status, record.outcome) == (template, status, "ok")
    assert record.route == (template or path)


async def test_metrics_from_a_sync_endpoint_in_a_thread_reach_the_header() -> None:
    app = TimingMiddleware(starlette_app())
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        user = await client.get("/users/1")
        item = await client.get("/api/items/3")
    assert user.text == "user 1"
    assert user.headers["server-timing"].startswith("app;dur=")
    assert re.fullmatch(
        r'app;dur=[0-9.]+, db;dur=[0-9.]+;desc="users query"', user.headers["server-timing"]
    )
    assert item.headers["server-timing"].endswith(', cache;desc="hit"')


async def test_starlette_error_is_reported_with_its_route() -> None:
    seen: list[RequestTiming] = []
    app = TimingMiddleware(starlette_app(), on_timing=seen.append)
    with pytest.raises(RuntimeError, match="handler failed"):
        await run_asgi(app, http_scope("GET", "/boom"))
    assert [(r.template, r.status, r.outcome) for r in seen] == [("/boom", 500, "error")]


async def test_app_mounted_under_a_root_path_reports_relative_templates() -> None:
    seen: list[RequestTiming] = []
    app = TimingMiddleware(starlette_app(), on_timing=seen.append)
    await run_asgi(app, http_scope("GET", "/api/items/9", root_path="/v1"))
    assert (seen[0].path, seen[0].template) == ("/api/items/9", "/api/items/{item_id}")


async def test_metrics_cross_a_base_http_middleware_inside() -> None:
    # BaseHTTPMiddleware runs the app in another task with a copy of the context, so context
    # variable changes never come back (starlette#1081); the shared metric list still does.
    async def passthrough(request: Request, call_next: Any) -> Any:
        with timing("outer-layer"):
            return await call_next(request)

    inner = Starlette(
        routes=starlette_app().routes,
        middleware=[Middleware(BaseHTTPMiddleware, dispatch=passthrough)],
    )
    seen: list[RequestTiming] = []
    app = TimingMiddleware(inner, on_timing=seen.append)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        response = await client.get("/api/items/1")
    assert re.fullmatch(
        r'app;dur=[0-9.]+, cache;desc="hit", outer-layer;dur=[0-9.]+',
        response.headers["server-timing"],
    )
    assert [m.name for m in seen[0].metrics] == ["cache", "outer-layer"]


def litestar_app() -> Litestar:
    @get("/orders/{order_id:int}", sync_to_thread=False)
    def order(order_id: FromPath[int]) -> str:
        add_timing("lookup", 1.5)
        return f"order {order_id}"

    return Litestar(route_handlers=[order])


async def test_litestar_path_template() -> None:
    seen: list[RequestTiming] = []
    app: Any = TimingMiddleware(litestar_app(), on_timing=seen.append)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        response = await client.get("/orders/12")
    assert response.text == "order 12"
    assert response.headers["server-timing"].endswith(", lookup;dur=1.500")
    [record] = seen
    assert (record.template, record.path, record.status) == (
        "/orders/{order_id}",
        "/orders/12",
        200,
    )
