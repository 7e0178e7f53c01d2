"""A real browser (headless Chromium) reading TimingMiddleware's metrics through the Resource
Timing and Navigation Timing APIs (``PerformanceResourceTiming.serverTiming``)."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse
from starlette.routing import Route

from middlewares.cors import CORSMiddleware
from middlewares.timing import Expose, TimingMiddleware, add_timing, timing

LiveServer = Callable[..., AbstractContextManager[str]]

# Fetch a URL, then wait for its resource entry (entries are queued after the response).
SERVER_TIMING = """async (url) => {
    const response = await fetch(url);
    await response.text();
    for (let i = 0; i < 100; i++) {
        const entries = performance.getEntriesByType("resource").filter((e) => e.name === url);
        if (entries.length) {
            return entries[0].serverTiming.map((m) => [m.name, m.duration, m.description]);
        }
        await new Promise((resolve) => setTimeout(resolve, 20));
    }
    return "no resource entry";
}"""
NAVIGATION = """() => performance.getEntriesByType("navigation")[0].serverTiming
    .map((m) => [m.name, m.description])"""


def site(expose: Expose = "always", *, allow_origin: str | None = None) -> Any:
    async def page(request: Request) -> HTMLResponse:
        add_timing("render", 1.25, desc="page template")
        return HTMLResponse("<!doctype html><title>timing</title><p>hello</p>")

    async def data(request: Request) -> JSONResponse:
        with timing("db", desc='users "active"'):
            pass
        add_timing("cache", 0.5, desc="hit")
        return JSONResponse({"ok": True})

    app: Any = Starlette(routes=[Route("/", page), Route("/data", data)])
    if allow_origin is not None:
        app = CORSMiddleware(app, allow_origins=[allow_origin])
    return TimingMiddleware(app, expose=expose)


def test_same_origin_page_reads_navigation_and_fetch_metrics(
    page: Any, live_server: LiveServer
) -> None:
    with live_server(site()) as url:
        page.goto(url + "/")
        assert page.evaluate(NAVIGATION) == [["app", ""], ["render", "page template"]]
        metrics = page.evaluate(SERVER_TIMING, url + "/data")
    assert [name for name, _, _ in metrics] == ["app", "db", "cache"]
    assert metrics[1][2] == 'users "active"'  # the quoted-string was unescaped by the browser
    assert metrics[2][1:] == [0.5, "hit"]
    assert metrics[0][1] >= 0


def test_cross_origin_page_needs_timing_allow_origin(page: Any, live_server: LiveServer) -> None:
    with (
        live_server(site()) as front,
        live_server(site(expose=[front], allow_origin=front)) as listed,
        live_server(site(expose="always", allow_origin=front)) as unlisted,
    ):
        page.goto(front + "/")
        granted = page.evaluate(SERVER_TIMING, listed + "/data")
        hidden = page.evaluate(SERVER_TIMING, unlisted + "/data")
    assert [name for name, _, _ in granted] == ["app", "db", "cache"]
    # Without Timing-Allow-Origin the browser hides the header from other origins.
    assert hidden == []
