"""RequestIDMiddleware(log_exceptions=True): the traceback of an exception escaping the app is
logged with the request's id (the server's own traceback has none), then re-raised."""

from __future__ import annotations

import logging

import pytest

from middlewares._types import Receive, Scope, Send
from middlewares.request_id import RequestIDFilter, RequestIDMiddleware
from middlewares.testing import http_scope, run_asgi, websocket_scope

from .logs import collected

pytestmark = pytest.mark.anyio

LOGGER = logging.getLogger("middlewares.request_id")


async def broken(scope: Scope, receive: Receive, send: Send) -> None:
    raise LookupError("no such row")


@pytest.mark.parametrize(
    ("scope", "where"),
    [
        pytest.param(http_scope("POST", "/orders"), "POST /orders", id="http request"),
        pytest.param(websocket_scope("/chat"), "WEBSOCKET /chat", id="websocket"),
    ],
)
async def test_an_escaping_exception_is_logged_with_the_id_then_re_raised(
    scope: Scope, where: str
) -> None:
    app = RequestIDMiddleware(broken, generator=lambda: "req-1", log_exceptions=True)
    with collected(LOGGER) as records, pytest.raises(LookupError, match="no such row"):
        await run_asgi(app, scope, validate=False)
    (record,) = [r for r in records if r.levelno == logging.ERROR]
    assert record.getMessage() == f"unhandled exception in {where} (request id req-1)"
    assert record.exc_info is not None
    assert isinstance(record.exc_info[1], LookupError)


async def test_the_logging_filter_sees_the_id_on_the_exception_record() -> None:
    app = RequestIDMiddleware(broken, generator=lambda: "req-2", log_exceptions=True)
    seen: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record.request_id)  # type: ignore[attr-defined]

    handler = Keep()
    handler.addFilter(RequestIDFilter())
    LOGGER.addHandler(handler)
    try:
        with pytest.raises(LookupError):
            await run_asgi(app, validate=False)
    finally:
        LOGGER.removeHandler(handler)
    assert seen == ["req-2"]


async def test_exceptions_are_not_logged_unless_asked() -> None:
    app = RequestIDMiddleware(broken)
    with collected(LOGGER) as records, pytest.raises(LookupError):
        await run_asgi(app, validate=False)
    assert [r for r in records if r.levelno == logging.ERROR] == []
