"""Guards on a request they let through: the body limit beside Starlette's, the timeout beside
the FastAPI recipe and a plain anyio cancel scope, each against the pass-through floor."""

from __future__ import annotations

import asyncio
import contextvars

import anyio
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.middleware.body_limit import RequestBodyLimitMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from middlewares._types import ASGIApp, Message, Receive, Scope, Send
from middlewares.body_limit import BodyLimitMiddleware
from middlewares.testing import http_scope
from middlewares.timeout import TimeoutMiddleware

from .harness import Case, PassThrough, respond_with

LIMIT = 1024 * 1024
BODY = b"x" * 1024


def _reading_app() -> ASGIApp:
    """An app that reads the whole body, then answers with its length."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        size = 0
        more = True
        while more:
            message = await receive()
            size += len(message.get("body", b""))
            more = message.get("more_body", False)
        body = str(size).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": body})

    return app


def _check_ok(label: str, messages: list[Message]) -> None:
    if messages[0]["status"] != 200:
        raise AssertionError(f"{label} did not let the request through: {messages[0]}")


class AnyioTimeout:
    """The textbook pure-ASGI timeout: the app in an anyio cancel scope with a deadline."""

    def __init__(self, app: ASGIApp, timeout: float) -> None:
        self.app = app
        self.timeout = timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        with anyio.move_on_after(self.timeout):
            await self.app(scope, receive, send)


class CancelScopeFloor:
    """The least any anyio-cancellable timeout costs: the pass-through floor inside a cancel
    scope with no deadline and no timer (the backend's scope class, built directly as
    TimeoutMiddleware does, since ``anyio.CancelScope()`` looks the backend up per call); with
    ``deadline_variable``, also the context variable the timeout issue asks for."""

    def __init__(self, app: ASGIApp, *, deadline_variable: bool = False) -> None:
        self.app = PassThrough(app)
        self.scope_class: type[anyio.CancelScope] | None = None
        self.variable = contextvars.ContextVar[float]("deadline") if deadline_variable else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.scope_class is None:
            self.scope_class = type(anyio.CancelScope())
        token = None if self.variable is None else self.variable.set(30.0)
        try:
            with self.scope_class():
                await self.app(scope, receive, send)
        finally:
            if token is not None and self.variable is not None:
                self.variable.reset(token)


def fastapi_recipe(app: ASGIApp) -> ASGIApp:
    """fastapi/fastapi#1752: ``asyncio.wait_for(call_next(request), timeout)`` in an HTTP
    middleware."""

    async def dispatch(request: Request, call_next: object) -> Response:
        try:
            return await asyncio.wait_for(call_next(request), 30)  # type: ignore[operator]
        except asyncio.TimeoutError:
            return JSONResponse({"detail": "timeout"}, status_code=504)

    return BaseHTTPMiddleware(app, dispatch=dispatch)


def cases() -> list[Case]:
    reader = _reading_app()
    post = http_scope("POST", "/upload", headers={"content-length": str(len(BODY))})
    body_variants: dict[str, ASGIApp] = {
        "middlewares": BodyLimitMiddleware(reader, max_body_size=LIMIT),
        "pass-through (floor)": PassThrough(reader),
        "starlette RequestBodyLimitMiddleware": RequestBodyLimitMiddleware(
            reader, max_body_size=LIMIT
        ),
    }
    app = respond_with(b"ok", [(b"content-type", b"text/plain")])
    timeout_variants: dict[str, ASGIApp] = {
        "middlewares (time to first byte)": TimeoutMiddleware(app, timeout=30),
        "middlewares (first byte, idle, total)": TimeoutMiddleware(
            app, timeout=30, idle_timeout=10, total_timeout=60
        ),
        "pass-through (floor)": PassThrough(app),
        "floor inside an anyio cancel scope, no timer": CancelScopeFloor(app),
        "the same, and a deadline context variable": CancelScopeFloor(app, deadline_variable=True),
        "anyio move_on_after": AnyioTimeout(app, 30),
        "FastAPI recipe (wait_for in an HTTP middleware)": fastapi_recipe(app),
    }
    return [
        Case(
            "guards",
            "body limit, 1 KiB POST under a 1 MiB limit",
            body_variants,
            scope=post,
            body=BODY,
            baseline="starlette RequestBodyLimitMiddleware",
            check=_check_ok,
        ),
        Case(
            "guards",
            "timeout, GET answered in time",
            timeout_variants,
            scope=http_scope("GET", "/items"),
            baseline="FastAPI recipe (wait_for in an HTTP middleware)",
            check=_check_ok,
        ),
    ]
