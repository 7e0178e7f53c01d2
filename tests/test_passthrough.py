"""Every middleware hands lifespan and unknown scope types to the app untouched: the same scope
object and the server's own receive and send callables."""

from __future__ import annotations

from typing import Any

import pytest

import middlewares
from middlewares._types import ASGIApp, Message, Receive, Scope, Send

pytestmark = pytest.mark.anyio

# Every class in the package that wraps an ASGI app, with the least configuration it needs.
WRAPPERS: dict[str, dict[str, Any]] = {
    "AccessLogMiddleware": {},
    "BlockingDetector": {"enabled": True},
    "BodyLimitMiddleware": {},
    "CORSMiddleware": {"allow_origins": ["https://a.example"]},
    "CSRFMiddleware": {},
    "CompressionMiddleware": {},
    "GZipMiddleware": {},
    "HTTPSRedirectMiddleware": {},
    "OffloadMiddleware": {},
    "OpenTelemetryMiddleware": {},
    "ProxyHeadersMiddleware": {},
    "RateLimitMiddleware": {"application_limits": ["1/minute"]},
    "RequestDecompressionMiddleware": {},
    "RequestIDMiddleware": {},
    "SecurityHeadersMiddleware": {},
    "SessionMiddleware": {"secret_key": "s" * 32},
    "TimeoutMiddleware": {},
    "TimingMiddleware": {},
    "TrustedHostMiddleware": {"allowed_hosts": ["example.com"]},
}
# Classes that wrap something other than an ASGI app and so answer every scope themselves.
ENDPOINTS = {"WSGIMiddleware"}


def test_every_middleware_is_listed() -> None:
    exported = {
        name
        for name in middlewares.__all__
        if name.endswith("Middleware") or name == "BlockingDetector"
    }
    assert exported == set(WRAPPERS) | ENDPOINTS


@pytest.mark.parametrize("name", sorted(WRAPPERS))
@pytest.mark.parametrize("scope_type", ["lifespan", "webtransport"])
async def test_scope_passes_through_untouched(name: str, scope_type: str) -> None:
    seen: list[tuple[Scope, Receive, Send]] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append((scope, receive, send))

    async def receive() -> Message:
        return {"type": f"{scope_type}.startup"}

    async def send(message: Message) -> None:
        return None

    scope: Scope = {"type": scope_type, "asgi": {"version": "3.0"}, "state": {}}
    before = dict(scope)
    middleware: ASGIApp = getattr(middlewares, name)(app, **WRAPPERS[name])
    await middleware(scope, receive, send)
    assert len(seen) == 1
    assert seen[0][0] is scope
    assert seen[0][0] == before
    assert seen[0][1] is receive
    assert seen[0][2] is send
