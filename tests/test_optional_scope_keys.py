"""Hand-built scopes, as in Starlette's and many users' tests: every middleware serves a scope
missing any of the keys the ASGI spec makes optional (and ``method``, which some early-hints
tests leave out), reading the spec's defaults instead of failing with a KeyError."""

from __future__ import annotations

import gzip
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import middlewares
from middlewares._types import ASGIApp, Message, Receive, Scope, Send
from middlewares.testing import http_scope, run_asgi, websocket_scope

pytestmark = pytest.mark.anyio

# Every middleware with the configuration that makes it read the most of the scope. A new
# middleware is one line here.
MIDDLEWARES: dict[str, dict[str, Any]] = {
    "AccessLogMiddleware": {"exclude_paths": ["/skip/*"]},
    "BlockingDetector": {"enabled": True},
    "BodyLimitMiddleware": {"max_body_size": 100, "path_limits": {"/skip/*": None}},
    "CORSMiddleware": {"allow_origins": ["https://a.example"], "allow_credentials": True},
    "CSRFMiddleware": {"secret": "k" * 32, "trusted_origins": ["https://a.example"]},
    "CompressionMiddleware": {"exclude_paths": ["/skip/*"]},
    "GZipMiddleware": {},
    "HTTPSRedirectMiddleware": {"allowed_hosts": ["a.example"], "exclude_paths": ["/skip/*"]},
    "OffloadMiddleware": {"exclude_paths": ["/skip/*"]},
    "OpenTelemetryMiddleware": {"excluded_urls": ["/skip"]},
    "ProxyHeadersMiddleware": {
        "trusted_hosts": "127.0.0.1",
        "x_host": 1,
        "x_port": 1,
        "x_prefix": 1,
    },
    "RateLimitMiddleware": {"application_limits": ["100/minute"]},
    "RequestDecompressionMiddleware": {},
    "RequestIDMiddleware": {"trusted_proxies": ["127.0.0.1"]},
    "SecurityHeadersMiddleware": {"overrides": {"/skip/*": False}},
    "SessionMiddleware": {"secret_key": "k" * 32},
    "TimeoutMiddleware": {"timeout": 5, "idle_timeout": 5},
    "TimingMiddleware": {},
    "TrustedHostMiddleware": {"allowed_hosts": ["a.example"], "exclude_paths": ["/skip/*"]},
}
# ASGI HTTP and WebSocket connection scopes: keys with a default in the spec, plus ``method``.
OPTIONAL_HTTP = ["method", "scheme", "raw_path", "root_path", "client", "server", "state"]
OPTIONAL_HTTP += ["extensions", "http_version", "query_string", "spec_version"]
OPTIONAL_WEBSOCKET = ["scheme", "raw_path", "root_path", "client", "server", "state"]
OPTIONAL_WEBSOCKET += ["extensions", "http_version", "query_string", "subprotocols", "spec_version"]
# Request headers that send each middleware down its longer paths.
HEADERS = {
    "origin": "https://a.example",
    "accept-encoding": "gzip",
    "x-request-id": "abc",
    "content-encoding": "gzip",
    "cookie": "session=x.y.z.w",
    "access-control-request-method": "PUT",
    "host": "a.example",
    "x-forwarded-for": "203.0.113.7, 10.0.0.1",
    "x-forwarded-proto": "https",
    "x-forwarded-host": "a.example",
    "x-forwarded-prefix": "/p",
}
BODY = b"x" * 2000


def without(scope: Scope, keys: set[str]) -> Scope:
    scope = {k: v for k, v in scope.items() if k not in keys}
    if "spec_version" in keys:
        scope["asgi"] = {"version": "3.0"}
    return scope


async def http_app(scope: Scope, receive: Receive, send: Send) -> None:
    while (await receive()).get("more_body", False):
        pass
    if "session" in scope:
        scope["session"]["seen"] = True
    headers = [(b"content-type", b"text/plain")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": BODY})


async def websocket_app(scope: Scope, receive: Receive, send: Send) -> None:
    await receive()
    await send({"type": "websocket.accept"})
    await send({"type": "websocket.close", "code": 1000})


def wsgi_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [BODY]


def build(name: str, app: ASGIApp) -> ASGIApp:
    middleware: ASGIApp = getattr(middlewares, name)(app, **MIDDLEWARES[name])
    return middleware


def assert_served(messages: list[Message]) -> None:
    start = next(m for m in messages if m["type"] == "http.response.start")
    assert start["status"] < 500


@pytest.mark.parametrize("name", sorted(MIDDLEWARES))
@settings(max_examples=20, deadline=None)
@given(
    removed=st.sets(st.sampled_from(OPTIONAL_HTTP)),
    headers=st.dictionaries(st.sampled_from(sorted(HEADERS)), st.just(""), max_size=4),
    method=st.sampled_from(["GET", "HEAD", "OPTIONS", "POST"]),
    path=st.sampled_from(["/", "/skip/x"]),
)
async def test_http_scopes_missing_optional_keys_are_served(
    name: str, removed: set[str], headers: dict[str, str], method: str, path: str
) -> None:
    chosen = {key: HEADERS[key] for key in headers}
    body = gzip.compress(b"hello") if "content-encoding" in chosen else b""
    scope = without(http_scope(method, path, headers=chosen), removed)
    recorded = await run_asgi(build(name, http_app), scope, body=body, validate=False)
    assert_served(recorded.messages)


@pytest.mark.parametrize("name", sorted(MIDDLEWARES))
@settings(max_examples=15, deadline=None)
@given(
    removed=st.sets(st.sampled_from(OPTIONAL_WEBSOCKET)),
    origin=st.sampled_from([None, "https://a.example", "https://evil.example"]),
)
async def test_websocket_scopes_missing_optional_keys_are_served(
    name: str, removed: set[str], origin: str | None
) -> None:
    headers = {} if origin is None else {"origin": origin}
    scope = without(websocket_scope("/ws", headers=headers), removed)
    recorded = await run_asgi(build(name, websocket_app), scope, validate=False)
    assert recorded.messages[0]["type"] in ("websocket.accept", "websocket.close")


@settings(max_examples=20, deadline=None)
@given(removed=st.sets(st.sampled_from(OPTIONAL_HTTP)))
async def test_the_wsgi_bridge_serves_scopes_missing_optional_keys(removed: set[str]) -> None:
    scope = without(http_scope("GET", "/"), removed)
    recorded = await run_asgi(middlewares.WSGIMiddleware(wsgi_app), scope, validate=False)
    assert_served(recorded.messages)
    assert recorded.body == BODY


def test_every_middleware_is_listed() -> None:
    exported = {
        name
        for name in middlewares.__all__
        if name.endswith("Middleware") or name == "BlockingDetector"
    }
    assert exported == set(MIDDLEWARES) | {"WSGIMiddleware"}
