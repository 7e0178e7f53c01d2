"""asgi-logger's format strings (gunicorn's ``%(atom)s`` atoms) work unchanged: the same line
for the atoms both compute, escaped, with headers redacted and the environment never logged."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from typing import Any

import pytest
from asgi_logger import AccessLoggerMiddleware

from middlewares._types import Receive, Scope, Send
from middlewares.access_log import AccessLogMiddleware, _Atoms
from middlewares.testing import http_scope, run_asgi

from .logs import collected

pytestmark = pytest.mark.anyio

OURS = logging.getLogger("tests.access.templates.ours")
THEIRS = logging.getLogger("tests.access.templates.asgi_logger")
for _logger in (OURS, THEIRS):
    _logger.setLevel(logging.INFO)
    _logger.propagate = False


@pytest.fixture
def lines() -> Iterator[tuple[list[logging.LogRecord], list[logging.LogRecord]]]:
    with collected(OURS) as ours, collected(THEIRS) as theirs:
        yield ours, theirs


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    headers = [(b"content-length", b"5"), (b"set-cookie", b"session=s3cr3t"), (b"x-id", b"7")]
    await send({"type": "http.response.start", "status": 404, "headers": headers})
    await send({"type": "http.response.body", "body": b"hello"})


def scope(**overrides: Any) -> Scope:
    return http_scope(
        "GET",
        "/items",
        query_string=b"q=1",
        headers={"user-agent": "probe/1", "referer": "https://a.example/"},
        **overrides,
    )


@pytest.mark.parametrize(
    "template",
    [
        pytest.param('"%(r)s" %(s)s %(st)s', id="request line and status"),
        pytest.param("%(m)s %(U)s %(q)s %(H)s", id="method path query protocol"),
        pytest.param('%(l)s %(u)s %(B)s "%(f)s" "%(a)s"', id="bytes referer agent"),
        pytest.param("%(request_line)s %(status_code)s", id="uvicorn-style atoms"),
        pytest.param("%({user-agent}i)s %({x-id}o)s %(nope)s", id="header atoms and unknown"),
    ],
)
async def test_same_line_as_asgi_logger(
    lines: tuple[list[logging.LogRecord], list[logging.LogRecord]], template: str
) -> None:
    await run_asgi(AccessLogMiddleware(app, format=template, logger=OURS), scope())
    await run_asgi(AccessLoggerMiddleware(app, format=template, logger=THEIRS), scope())  # type: ignore[arg-type]
    ours, theirs = lines
    assert ours[0].getMessage() == theirs[0].getMessage()


async def test_atoms_that_differ_on_purpose(
    lines: tuple[list[logging.LogRecord], list[logging.LogRecord]],
) -> None:
    ticks = iter([10.0, 10.001, 10.0025, 10.0025])
    template = (
        "%(h)s %(t)s %(T)s %(M)s %(D)s %(L)s %(p)s %(b)s %({set-cookie}o)s %({HOME}e)s"
        ' "%({user-agent}i)s"'
    )
    middleware = AccessLogMiddleware(app, format=template, logger=OURS, clock=lambda: next(ticks))
    evil = scope(client=("10.0.0.9", 1234))
    evil["headers"] = [(b"user-agent", b'x"\r\ny')]
    await run_asgi(middleware, evil)
    text = lines[0][0].getMessage()
    host, stamp, zone, rest = text.split(" ", 3)
    assert host == "10.0.0.9"  # asgi-logger: "10.0.0.9:1234"
    assert stamp.startswith("[")
    assert zone == "+0000]"  # UTC, where asgi-logger writes local time
    assert rest.split(" ") == [
        "0",
        "2",
        "2500",
        "0.002500",
        f"<{os.getpid()}>",
        "5",  # counted; asgi-logger's %(b)s is always "-" (it misses its own lower-casing)
        "REDACTED",  # asgi-logger logs the cookie
        "-",  # asgi-logger logs the environment variable
        '"x\\"\\x0d\\x0ay"',  # asgi-logger writes the CR/LF as is
    ]


@pytest.mark.parametrize(
    "template",
    [
        pytest.param("%(h)d", id="a number conversion of text"),
        pytest.param("%(h)s %", id="a dangling percent"),
    ],
)
def test_a_template_that_does_not_format_is_refused(template: str) -> None:
    with pytest.raises(ValueError, match="not a valid %\\(atom\\)s template"):
        AccessLogMiddleware(app, format=template)


def test_status_phrase_of_an_unknown_status() -> None:
    assert _Atoms({"status": 599})["st"] == "-"
    assert _Atoms({"status": 599})["status_code"] == "599 -"
