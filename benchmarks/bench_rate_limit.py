"""Rate limiting, in memory: RateLimitMiddleware beside limits' moving window as slowapi uses it
(``hit`` then ``get_window_stats`` for the headers), and beside slowapi's own ASGI middleware in
a Starlette app. Requests come from 10,000 client addresses in turn, 100/minute each, so the
stores hold realistic numbers of keys and nobody is refused."""

from __future__ import annotations

import itertools
import time

from limits import parse
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter
from slowapi import Limiter
from slowapi.middleware import SlowAPIASGIMiddleware
from slowapi.util import get_remote_address
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from middlewares._core.proxies import client_host
from middlewares._types import ASGIApp, Message, Receive, Scope, Send
from middlewares.rate_limit import RateLimitMiddleware
from middlewares.testing import http_scope

from .harness import Case, PassThrough, respond_with

RATE = "100/minute"
CLIENTS = 10_000


class FromManyClients:
    """Gives each request the next of ``CLIENTS`` addresses, the same for every variant."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.addresses = itertools.cycle(
            [(f"10.{n >> 16}.{(n >> 8) & 255}.{n & 255}", 50000) for n in range(CLIENTS)]
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope["client"] = next(self.addresses)
        await self.app(scope, receive, send)


class InlineExpiryStorage(MemoryStorage):
    """limits' MemoryStorage with its expiry scan run inline at the rate its timer thread runs
    it (10 ms after the previous scan ended, while requests come), so the scan's CPU time is
    charged to limits' row rather than to whichever variant the harness times while the
    thread is still scanning."""

    def __init__(self) -> None:
        super().__init__()
        self.next_expiry = 0.0

    def _MemoryStorage__schedule_expiry(self) -> None:
        # The thread's timer is re-armed only once a scan has ended: 10 ms after each scan.
        if time.monotonic() >= self.next_expiry:
            self._MemoryStorage__expire_events()  # type: ignore[attr-defined]
            self.next_expiry = time.monotonic() + 0.01


class MovingWindowCheck:
    """limits' in-memory moving window exactly as slowapi drives it per request: ``hit``, then
    ``get_window_stats`` for the X-RateLimit headers, around a pure-ASGI pass-through."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.limiter = MovingWindowRateLimiter(InlineExpiryStorage())
        self.limit = parse(RATE)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        key = client_host(scope) or "-"
        if not self.limiter.hit(self.limit, key):
            raise AssertionError("the benchmark should never be refused")
        reset, remaining = self.limiter.get_window_stats(self.limit, key)
        headers = [
            (b"x-ratelimit-limit", b"%d" % self.limit.amount),
            (b"x-ratelimit-remaining", b"%d" % remaining),
            (b"x-ratelimit-reset", b"%d" % (reset + 1)),
        ]

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), *headers]
            await send(message)

        await self.app(scope, receive, send_with_headers)


async def home(request: Request) -> PlainTextResponse:
    return PlainTextResponse("ok")


def starlette_app(*middleware: Middleware) -> Starlette:
    return Starlette(routes=[Route("/", home)], middleware=list(middleware))


def slowapi_app() -> Starlette:
    app = starlette_app(Middleware(SlowAPIASGIMiddleware))
    app.state.limiter = Limiter(
        key_func=get_remote_address,
        default_limits=[RATE],
        strategy="moving-window",
        headers_enabled=True,
    )
    return app


def _check_headers(label: str, messages: list[Message]) -> None:
    start = messages[0]
    if start["status"] != 200:
        raise AssertionError(f"{label} refused a request: {start}")
    names = {k.lower() for k, _ in start["headers"]}
    if "floor" not in label and not names & {b"ratelimit", b"x-ratelimit-remaining"}:
        raise AssertionError(f"{label} sent no rate-limit headers: {start}")


def cases() -> list[Case]:
    app = respond_with(b"ok", [(b"content-type", b"text/plain")])
    bare: dict[str, ASGIApp] = {
        "middlewares": FromManyClients(RateLimitMiddleware(app, application_limits=[RATE])),
        "pass-through (floor)": FromManyClients(PassThrough(app)),
        "limits moving window": FromManyClients(MovingWindowCheck(app)),
    }
    in_starlette: dict[str, ASGIApp] = {
        "middlewares": FromManyClients(
            starlette_app(Middleware(RateLimitMiddleware, application_limits=[RATE]))
        ),
        "pass-through (floor)": FromManyClients(starlette_app(Middleware(PassThrough))),
        # Its expiry thread's scans land partly on the next variant timed: on ours.
        "slowapi": FromManyClients(slowapi_app()),
    }
    return [
        Case(
            "rate_limit",
            "in-memory check, 10,000 clients",
            bare,
            scope=http_scope("GET", "/"),
            baseline="limits moving window",
            check=_check_headers,
        ),
        Case(
            "rate_limit",
            "Starlette app, in memory, 10,000 clients",
            in_starlette,
            scope=http_scope("GET", "/"),
            baseline="slowapi",
            check=_check_headers,
        ),
    ]
