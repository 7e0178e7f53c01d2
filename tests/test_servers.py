"""The real-server fixtures work: uvicorn over 127.0.0.1 and headless Chromium."""

from __future__ import annotations

import gc
import os
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import httpx
import pytest

from middlewares._core.respond import send_response
from middlewares._types import Receive, Scope, Send

from .servers import serve

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


async def failing_startup(scope: Scope, receive: Receive, send: Send) -> None:
    await receive()
    await send({"type": "lifespan.startup.failed", "message": "no database"})


def open_descriptors() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_a_server_that_fails_to_start_leaves_no_socket_open() -> None:
    before = open_descriptors()
    with pytest.raises(RuntimeError, match="uvicorn did not start"):  # noqa: SIM117
        with serve(failing_startup, lifespan="on", log_level="critical"):
            pass  # pragma: no cover - never reached
    gc.collect()
    assert open_descriptors() <= before  # other tests' threads may close theirs meanwhile
