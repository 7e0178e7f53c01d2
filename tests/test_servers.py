"""The real-server fixtures work: uvicorn over 127.0.0.1 and headless Chromium."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import httpx

from middlewares._core.respond import send_response
from middlewares._types import Receive, Scope, Send

PAGE = b"<!doctype html><title>t</title><p id=p>served</p><script>document.title='ran'</script>"


async def page_app(scope: Scope, receive: Receive, send: Send) -> None:
    await send_response(send, 200, body=PAGE, content_type=b"text/html; charset=utf-8")


def test_live_server_serves_over_loopback(
    live_server: Callable[..., AbstractContextManager[str]],
) -> None:
    with live_server(page_app) as url:
        assert url.startswith("http://127.0.0.1:")
        response = httpx.get(url)
    assert response.status_code == 200
    assert response.content == PAGE


def test_browser_renders_a_served_page(
    live_server: Callable[..., AbstractContextManager[str]], page: Any
) -> None:
    with live_server(page_app) as url:
        page.goto(url)
        assert page.text_content("#p") == "served"
        assert page.title() == "ran"
