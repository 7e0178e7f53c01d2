"""WSGIMiddleware and ``start_response(..., exc_info)``: the app's error page is sent in full,
then the app's exception reaches the server, as with Starlette's and a2wsgi's WSGIMiddleware."""

from __future__ import annotations

import logging
import sys
import threading
from typing import Any

import httpx
import pytest
from a2wsgi import WSGIMiddleware as A2WSGIMiddleware

from middlewares._types import ASGIApp, Receive, Scope, Send
from middlewares.testing import Recorded, run_asgi
from middlewares.wsgi import WSGIMiddleware

from .servers import serve


def failing_app(environ: Any, start_response: Any) -> list[bytes]:
    """What Flask, Django and most error-page middleware do with an exception."""
    start_response("200 OK", [("Content-Type", "text/html")])
    try:
        raise ValueError("template broke")
    except ValueError:
        start_response(
            "500 Internal Server Error", [("Content-Type", "text/plain")], sys.exc_info()
        )
    return [b"error ", b"page"]


class Catch:
    """An outer layer standing for the server: records what the app raised."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.error: BaseException | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self.app(scope, receive, send)
        except Exception as error:
            self.error = error


async def run_caught(middleware: Any) -> tuple[Recorded, BaseException | None]:
    server = Catch(middleware(failing_app))
    recorded = await run_asgi(server, validate=False)
    return recorded, server.error


@pytest.mark.anyio
async def test_exc_info_sends_the_error_page_in_full_then_raises_to_the_server() -> None:
    recorded, error = await run_caught(WSGIMiddleware)
    assert recorded.status == 500
    assert recorded.header("content-type") == "text/plain"
    assert recorded.body == b"error page"
    assert recorded.messages[-1].get("more_body", False) is False
    assert isinstance(error, ValueError)
    assert str(error) == "template broke"


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])  # a2wsgi runs on asyncio only
async def test_a2wsgi_raises_the_same_exception_but_keeps_the_first_status() -> None:
    recorded, error = await run_caught(A2WSGIMiddleware)
    assert recorded.status == 200  # ours sends the error page's own status
    assert recorded.body == b"error page"
    assert isinstance(error, ValueError)


class _Logged(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []
        self.seen = threading.Event()

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)
        self.seen.set()


@pytest.mark.server
def test_uvicorn_logs_the_exception_after_the_client_got_the_error_page() -> None:
    # uvicorn configures its loggers as it starts: listen only after that.
    logger = logging.getLogger("uvicorn.error")
    handler = _Logged()
    with serve(WSGIMiddleware(failing_app)) as url:
        logger.addHandler(handler)
        try:
            response = httpx.get(url + "/")
            # The server logs once the response is out, possibly after the client read it.
            handler.seen.wait(10)
        finally:
            logger.removeHandler(handler)
    assert response.status_code == 500
    assert response.text == "error page"
    assert handler.records[0].exc_info is not None
    assert isinstance(handler.records[0].exc_info[1], ValueError)
