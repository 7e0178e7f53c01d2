"""A real browser (headless Chromium) enforcing CORSMiddleware's answers: a page served from one
port calls an API served from another, as a front end calls its API."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse
from starlette.routing import Route

from middlewares.cors import CORSMiddleware

LiveServer = Callable[..., AbstractContextManager[str]]

FETCH = """async ([url, init]) => {
    try {
        const response = await fetch(url, init);
        return `${response.status} ${await response.text()}`;
    } catch (error) {
        return `blocked: ${error.name}`;
    }
}"""


def front_end() -> Starlette:
    def index(request: Request) -> HTMLResponse:
        return HTMLResponse("<!doctype html><title>front end</title><p>front end</p>")

    return Starlette(routes=[Route("/", index)])


def api(hits: list[str], **cors: Any) -> CORSMiddleware:
    def items(request: Request) -> PlainTextResponse:
        hits.append(f"{request.method} {request.url.path}")
        token = request.headers.get("x-token", "")
        return PlainTextResponse(f"{request.method} items {token}".strip())

    def me(request: Request) -> PlainTextResponse:
        hits.append(f"{request.method} {request.url.path}")
        return PlainTextResponse(f"session={request.cookies.get('session', '')}")

    app = Starlette(
        routes=[Route("/items", items, methods=["GET", "PUT"]), Route("/me", me)],
    )
    return CORSMiddleware(app, **cors)


def call(page: Any, url: str, **init: Any) -> str:
    return str(page.evaluate(FETCH, [url, init]))


def test_allowed_origin_reads_simple_and_preflighted_responses(
    page: Any, live_server: LiveServer
) -> None:
    hits: list[str] = []
    with live_server(front_end()) as site:
        cors = {
            "allow_origins": [site],
            "allow_methods": ["GET", "PUT"],
            "allow_headers": ["x-token"],
        }
        with live_server(api(hits, **cors)) as backend:
            page.goto(site)
            assert call(page, f"{backend}/items") == "200 GET items"
            put = call(page, f"{backend}/items", method="PUT", headers={"X-Token": "t1"})
            assert put == "200 PUT items t1"
    assert hits == ["GET /items", "PUT /items"]  # the preflight never reached the app


def test_credentialed_request_carries_cookies_when_allowed(
    page: Any, live_server: LiveServer
) -> None:
    hits: list[str] = []
    with (
        live_server(front_end()) as site,
        live_server(api(hits, allow_origins=[site], allow_credentials=True)) as backend,
    ):
        page.context.add_cookies([{"name": "session", "value": "abc", "url": backend}])
        page.goto(site)
        assert call(page, f"{backend}/me", credentials="include") == "200 session=abc"


def test_credentialed_request_is_blocked_when_credentials_are_not_allowed(
    page: Any, live_server: LiveServer
) -> None:
    hits: list[str] = []
    with live_server(front_end()) as site, live_server(api(hits, allow_origins=[site])) as backend:
        page.context.add_cookies([{"name": "session", "value": "abc", "url": backend}])
        page.goto(site)
        assert call(page, f"{backend}/me", credentials="include") == "blocked: TypeError"
        # Without credentials the read works, and the browser keeps the cookie to itself.
        assert call(page, f"{backend}/me") == "200 session="
    assert hits == ["GET /me", "GET /me"]


def test_refused_origin_is_blocked_by_the_browser(page: Any, live_server: LiveServer) -> None:
    hits: list[str] = []
    cors = {"allow_origins": ["https://elsewhere.example"], "allow_methods": ["GET", "PUT"]}
    with live_server(front_end()) as site, live_server(api(hits, **cors)) as backend:
        page.goto(site)
        assert call(page, f"{backend}/items") == "blocked: TypeError"
        assert call(page, f"{backend}/items", method="PUT") == "blocked: TypeError"
    # The simple GET reached the app but the browser hid the answer; the PUT's preflight was
    # refused, so the PUT itself was never sent.
    assert hits == ["GET /items"]
