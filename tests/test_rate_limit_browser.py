"""A real browser (headless Chromium) reading what RateLimitMiddleware sends: the IETF headers
and Retry-After from a page's own fetches, and, across origins, why CORS goes outside the
limiter (a 429 without CORS headers reaches scripts as a network error)."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse
from starlette.routing import Route

from middlewares import CORSMiddleware, RateLimit, RateLimitMiddleware
from middlewares._types import ASGIApp

LiveServer = Callable[..., AbstractContextManager[str]]

# What a page sees of each of ``count`` fetches: status, the two fields and the body.
FIRE = """async ([url, count]) => {
    const seen = [];
    for (let n = 0; n < count; n++) {
        try {
            const r = await fetch(url, {cache: "no-store"});
            seen.push([r.status, r.headers.get("ratelimit"), r.headers.get("retry-after"),
                       (await r.text()).slice(0, 80)]);
        } catch (error) {
            seen.push(["blocked", error.name, null, null]);
        }
    }
    return seen;
}"""


async def index(request: Request) -> HTMLResponse:
    return HTMLResponse("<!doctype html><title>rate limit</title><p>page</p>")


async def items(request: Request) -> JSONResponse:
    return JSONResponse({"items": []})


def limited(app: ASGIApp) -> RateLimitMiddleware:
    return RateLimitMiddleware(
        app,
        route_limits={"/items": RateLimit("2/minute", name="items")},
        error_format="problem+json",
    )


def site() -> Starlette:
    return Starlette(routes=[Route("/", index), Route("/items", items)])


def test_a_page_reads_the_rate_limit_headers_and_the_refusal(
    page: Any, live_server: LiveServer
) -> None:
    with live_server(limited(site())) as url:
        page.goto(url + "/")
        seen = page.evaluate(FIRE, [url + "/items", 3])
    assert [row[0] for row in seen] == [200, 200, 429]
    assert seen[0][1].startswith('"items";r=1;t=')
    assert seen[2][2] == "30"
    assert seen[2][3].startswith('{"type":"about:blank","title":"Too Many Requests","status":429,')


def cross_origin(order: str) -> ASGIApp:
    cors = {
        "allow_origins": ["*"],
        "expose_headers": ["RateLimit", "RateLimit-Policy", "Retry-After"],
    }
    if order == "cors outside":
        return CORSMiddleware(limited(site()), **cors)
    return limited(CORSMiddleware(site(), **cors))


def test_cors_outside_the_limiter_lets_scripts_read_a_429_and_inside_it_does_not(
    page: Any, live_server: LiveServer
) -> None:
    with live_server(site()) as front:
        page.goto(front + "/")
        with live_server(cross_origin("cors outside")) as api:
            outside = page.evaluate(FIRE, [api + "/items", 3])
        with live_server(cross_origin("cors inside")) as api:
            inside = page.evaluate(FIRE, [api + "/items", 3])
    assert [row[0] for row in outside] == [200, 200, 429]
    assert outside[2][2] == "30"  # Retry-After readable: exposed, on a response with CORS
    assert [row[0] for row in inside] == [200, 200, "blocked"]
