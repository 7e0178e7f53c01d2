"""Headless Chromium decodes what CompressionMiddleware sends, for gzip, br and zstd, and
receives server-sent events one by one."""

from __future__ import annotations

import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import anyio.to_thread
import pytest

from middlewares._types import ASGIApp, Receive, Scope, Send
from middlewares.compression import CompressionMiddleware

LiveServer = Callable[..., AbstractContextManager[str]]
TEXT = "".join(
    f"<p>paragraph {i}: the quick brown fox jumps over the lazy dog</p>" for i in range(400)
)
HTML = f"<!doctype html><html><body><main id='text'>{TEXT}</main></body></html>".encode()


async def page_app(scope: Scope, receive: Receive, send: Send) -> None:
    headers = [
        (b"content-type", b"text/html; charset=utf-8"),
        (b"content-length", b"%d" % len(HTML)),
    ]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": HTML})


def one_coding_per_path() -> ASGIApp:
    """``/gzip``, ``/br`` and ``/zstd`` each offer only that coding."""
    apps = {
        f"/{coding}": CompressionMiddleware(page_app, encodings=(coding,), zstd_level=19)
        for coding in ("gzip", "br", "zstd")
    }

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["path"] in apps:
            await apps[scope["path"]](scope, receive, send)
            return
        await send({"type": "http.response.start", "status": 404, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    return app


@pytest.mark.parametrize("coding", ["gzip", "br", "zstd"])
def test_chromium_decodes_each_coding(live_server: LiveServer, page: Any, coding: str) -> None:
    with live_server(one_coding_per_path()) as url:
        response = page.goto(f"{url}/{coding}")
        assert response.status == 200
        assert response.headers["content-encoding"] == coding
        # The markup the page parsed is exactly what the app sent, byte for byte.
        assert page.evaluate("document.getElementById('text').innerHTML") == TEXT
        assert "paragraph 399: the quick brown fox" in page.inner_text("#text")


def test_chromium_receives_compressed_events_one_by_one(live_server: LiveServer, page: Any) -> None:
    release = threading.Event()

    async def events(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["path"] != "/events":
            await page_app(scope, receive, send)
            return
        headers = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"data: first\n\n", "more_body": True})
        # The second event waits until the browser has shown the first one.
        await anyio.to_thread.run_sync(release.wait, 10)
        await send({"type": "http.response.body", "body": b"data: second\n\n"})

    with live_server(CompressionMiddleware(events)) as url:
        page.goto(url + "/")
        with page.expect_response(url + "/events") as info:
            page.evaluate(
                """() => {
                    window.seen = [];
                    const source = new EventSource('/events');
                    source.onmessage = (event) => window.seen.push(event.data);
                }"""
            )
        try:
            page.wait_for_function("window.seen.length === 1")
            assert page.evaluate("window.seen") == ["first"]
            release.set()
            page.wait_for_function("window.seen.length === 2")
        finally:
            release.set()
        assert page.evaluate("window.seen") == ["first", "second"]
        assert info.value.headers["content-encoding"] == "zstd"
