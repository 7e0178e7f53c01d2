"""WSGI under ASGI: this library's bridge against a2wsgi and Starlette's deprecated one."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from typing import Any

from a2wsgi import WSGIMiddleware as A2WSGIMiddleware

from middlewares._types import ASGIApp, Message
from middlewares.testing import http_scope
from middlewares.wsgi import WSGIMiddleware

from .harness import Case

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # Starlette warns that this module is deprecated
    from starlette.middleware.wsgi import WSGIMiddleware as StarletteWSGIMiddleware

CHUNK = b"x" * 65536


def hello(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "13")])
    return [b"Hello, world!"]


def count_body(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    size = 0
    while part := environ["wsgi.input"].read(65536):
        size += len(part)
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [str(size).encode()]


def stream_1mib(environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
    start_response("200 OK", [("Content-Type", "application/octet-stream")])
    for _ in range(16):
        yield CHUNK


def variants(app: Any) -> dict[str, ASGIApp]:
    return {
        "middlewares WSGIMiddleware": WSGIMiddleware(app),
        "a2wsgi 1.10": A2WSGIMiddleware(app),
        "starlette WSGIMiddleware (deprecated)": StarletteWSGIMiddleware(app),
    }


def expect_body(expected: bytes) -> Any:
    def check(label: str, messages: list[Message]) -> None:
        body = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.response.body")
        if body != expected:
            raise AssertionError(f"{label} answered {body[:40]!r}..., expected {expected[:40]!r}")

    return check


def cases() -> list[Case]:
    body = b"y" * 65536
    return [
        Case(
            "wsgi",
            "GET hello world",
            variants(hello),
            baseline="a2wsgi 1.10",
            check=expect_body(b"Hello, world!"),
        ),
        Case(
            "wsgi",
            "POST 64 KiB body, read in the app",
            variants(count_body),
            scope=http_scope("POST", headers={"content-length": str(len(body))}),
            body=body,
            baseline="a2wsgi 1.10",
            check=expect_body(b"65536"),
        ),
        Case(
            "wsgi",
            "GET 1 MiB streamed in 64 KiB chunks",
            variants(stream_1mib),
            baseline="a2wsgi 1.10",
            check=expect_body(CHUNK * 16),
        ),
    ]
