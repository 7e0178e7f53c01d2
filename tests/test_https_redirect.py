"""HTTPSRedirectMiddleware: Starlette's own tests, the behaviour table of edge.md §3.2, T33-T43."""

from __future__ import annotations

from typing import Any

import anyio
import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from middlewares import HTTPSRedirectMiddleware, ProxyHeadersMiddleware
from middlewares._types import Receive, Scope, Send
from middlewares.testing import Recorded, http_scope, run_asgi, websocket_scope

from .test_trusted_host import ok

pytestmark = pytest.mark.anyio


async def request(
    host: str | None = "example.com",
    *,
    method: str = "GET",
    path: str = "/",
    query: bytes = b"",
    scheme: str = "http",
    headers: list[tuple[str, str]] = (),  # type: ignore[assignment]
    **options: Any,
) -> Recorded:
    fields = [*([("host", host)] if host is not None else []), *headers]
    scope = http_scope(method, path, headers=fields, query_string=query, scheme=scheme)
    return await run_asgi(HTTPSRedirectMiddleware(ok, **options), scope)


# --- Starlette's tests (tests/middleware/test_https_redirect.py), adapted -----------------------


def homepage(request: Request) -> PlainTextResponse:
    return PlainTextResponse("OK", status_code=200)


@pytest.mark.parametrize(
    ("base_url", "location"),
    [
        pytest.param("http://testserver", "https://testserver/", id="plain"),
        pytest.param("http://testserver:80", "https://testserver/", id="port 80 dropped"),
        pytest.param("http://testserver:443", "https://testserver/", id="port 443 dropped"),
        pytest.param("http://testserver:123", "https://testserver:123/", id="other port kept"),
    ],
)
async def test_starlette_https_redirect_middleware(base_url: str, location: str) -> None:
    app = Starlette(
        routes=[Route("/", endpoint=homepage)], middleware=[Middleware(HTTPSRedirectMiddleware)]
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as client:
        assert (await client.get("/")).status_code == 200
    async with httpx.AsyncClient(transport=transport, base_url=base_url) as client:
        response = await client.get("/", follow_redirects=False)
    assert response.status_code == 307
    assert response.headers["location"] == location
    assert response.content == b""


# --- Traps ---------------------------------------------------------------------------------------


async def test_t33_no_loop_behind_a_trusted_tls_terminating_proxy() -> None:
    app = ProxyHeadersMiddleware(HTTPSRedirectMiddleware(ok), trusted_hosts=["10.0.0.0/8"])
    scope = http_scope(
        headers=[("host", "example.com"), ("x-forwarded-proto", "https")], client=("10.0.0.1", 1)
    )
    assert (await run_asgi(app, scope)).status == 200


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "GET"])
async def test_t34_the_method_is_kept_307_or_308_never_301_or_302(method: str) -> None:
    assert (await request(method=method)).status == 307
    assert (await request(method=method, status_code=308)).status == 308


@pytest.mark.parametrize("status", [301, 302, 303, 200])
def test_t34_status_codes_that_change_the_method_are_refused(status: int) -> None:
    with pytest.raises(ValueError, match="status_code must be 307 or 308"):
        HTTPSRedirectMiddleware(ok, status_code=status)


async def test_t35_temporary_by_default() -> None:
    result = await request(path="/a b", query=b"x=1&y=%20")
    assert result.status == 307
    assert result.header("location") == "https://example.com/a%20b?x=1&y=%20"


@pytest.mark.parametrize(
    ("host", "https_port", "location"),
    [
        pytest.param("example.com:8080", 8443, "https://example.com:8443/", id="port rewritten"),
        pytest.param("example.com:8080", None, "https://example.com:8080/", id="None keeps it"),
        pytest.param("example.com", 443, "https://example.com/", id="443 left out"),
        pytest.param("[::1]:8080", 8443, "https://[::1]:8443/", id="IPv6"),
    ],
)
async def test_t36_https_port(host: str, https_port: int | None, location: str) -> None:
    result = await request(host, https_port=https_port)
    assert result.header("location") == location


async def test_t37_an_unlisted_host_is_400_not_a_location() -> None:
    options = {"allowed_hosts": ["example.com", "*.example.com"]}
    refused = await request("evil.example", **options)
    assert refused.status == 400
    assert refused.header("location") is None
    assert (await request("a.example.com", **options)).header(
        "location"
    ) == "https://a.example.com/"


async def test_t37_a_fixed_redirect_host_ignores_the_request_host() -> None:
    result = await request("evil.example", redirect_host="Example.com:8443")
    assert result.header("location") == "https://example.com:8443/"
    result = await request(None, redirect_host="example.com", https_port=443)
    assert result.header("location") == "https://example.com/"


@pytest.mark.parametrize(
    "host",
    [
        pytest.param(None, id="no Host (HTTP/1.0)"),
        pytest.param("a/b", id="malformed"),
        pytest.param("evil.example\r\nx: 1", id="CR LF"),
    ],
)
async def test_t38_no_usable_host_is_400_not_the_internal_address(host: str | None) -> None:
    result = await request(host)
    assert result.status == 400
    assert result.header("location") is None
    assert result.body == b"Invalid host header"


async def test_t38_two_host_fields_are_400() -> None:
    assert (await request(headers=[("host", "example.com")])).status == 400


async def test_t39_excluded_paths_with_prefixes_stay_on_http() -> None:
    options = {"exclude_paths": ["/healthz", "/healthz/*"]}
    assert (await request(path="/healthz", **options)).status == 200
    assert (await request(path="/healthz/all", **options)).status == 200
    assert (await request(path="/healthzx", **options)).status == 307


async def test_t40_a_clients_own_x_forwarded_proto_still_redirects() -> None:
    spoofed = await request(headers=[("x-forwarded-proto", "https")])
    assert spoofed.status == 307
    behind = ProxyHeadersMiddleware(HTTPSRedirectMiddleware(ok), trusted_hosts=["10.0.0.0/8"])
    scope = http_scope(
        headers=[("host", "example.com"), ("x-forwarded-proto", "https")], client=("8.8.8.8", 1)
    )
    assert (await run_asgi(behind, scope)).status == 307


async def test_t41_the_redirect_over_http_carries_no_hsts() -> None:
    result = await request()
    assert result.header("strict-transport-security") is None


async def test_t42_hsts_an_app_sets_on_an_https_redirect_passes_through() -> None:
    async def redirecting(scope: Scope, receive: Receive, send: Send) -> None:
        headers = [
            (b"location", b"https://www.example.com/"),
            (b"strict-transport-security", b"max-age=63072000"),
        ]
        await send({"type": "http.response.start", "status": 301, "headers": headers})
        await send({"type": "http.response.body", "body": b""})

    scope = http_scope(headers=[("host", "example.com")], scheme="https")
    result = await run_asgi(HTTPSRedirectMiddleware(redirecting), scope)
    assert result.header("strict-transport-security") == "max-age=63072000"


async def test_t43_a_plain_websocket_is_refused_without_a_location() -> None:
    middleware = HTTPSRedirectMiddleware(ok)
    offered = {"websocket.http.response": {}}
    scope = websocket_scope(headers=[("host", "example.com")], extensions=offered)
    closed = await run_asgi(middleware, scope)
    assert closed.messages == [{"type": "websocket.close", "code": 1008}]
    asking = HTTPSRedirectMiddleware(ok, websocket_denial_response=True)
    denied = await run_asgi(asking, scope)
    assert denied.status == 403
    assert denied.header("location") is None
    not_offered = await run_asgi(asking, websocket_scope(headers=[("host", "example.com")]))
    assert [m["type"] for m in not_offered.messages] == ["websocket.close"]
    secure = await run_asgi(
        middleware, websocket_scope(headers=[("host", "example.com")], scheme="wss")
    )
    assert secure.messages[0]["type"] == "websocket.accept"


async def test_t43_websocket_redirect_is_opt_in() -> None:
    middleware = HTTPSRedirectMiddleware(ok, websocket_policy="redirect")
    offered = {"websocket.http.response": {}}
    scope = websocket_scope("/chat", headers=[("host", "example.com:80")], extensions=offered)
    result = await run_asgi(middleware, scope)
    assert result.status == 307
    assert result.header("location") == "wss://example.com/chat"


@pytest.mark.parametrize(
    ("options", "match"),
    [
        pytest.param({"https_port": 0}, "https_port", id="port zero"),
        pytest.param({"https_port": 70000}, "https_port", id="port too large"),
        pytest.param({"https_port": "443"}, "https_port", id="port as a string"),
        pytest.param({"redirect_host": "a/b"}, "redirect_host", id="bad redirect host"),
        pytest.param({"allowed_hosts": ["a b"]}, "allowed_hosts", id="bad allowed host"),
        pytest.param({"websocket_policy": "allow"}, "websocket_policy", id="bad policy"),
    ],
)
def test_misconfiguration_raises(options: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        HTTPSRedirectMiddleware(ok, **options)


@given(st.binary(max_size=80), st.binary(max_size=80))
def test_arbitrary_host_and_path_give_a_redirect_or_400(host: bytes, raw_path: bytes) -> None:
    scope = http_scope()
    scope["headers"] = [(b"host", host)]
    scope["raw_path"] = raw_path
    result = anyio.run(run_asgi, HTTPSRedirectMiddleware(ok), scope)
    assert result.status in (307, 400)
    location = result.header("location")
    if location is not None:
        assert location.startswith("https://")
        assert "\r" not in location
        assert "\n" not in location


@pytest.mark.parametrize(
    ("target", "location"),
    [
        pytest.param("@evil.com/", "https://example.com/@evil.com/", id="userinfo trick"),
        pytest.param(".evil.com/x", "https://example.com/.evil.com/x", id="host suffix trick"),
        pytest.param("http://evil.com/x", "https://example.com/http://evil.com/x", id="absolute"),
        pytest.param("*", "https://example.com/*", id="asterisk"),
    ],
)
async def test_a_target_that_is_not_origin_form_never_names_another_host(
    target: str, location: str
) -> None:
    # h11-based servers pass such request targets through as the path.
    scope = http_scope(headers=[("host", "example.com")])
    scope["raw_path"] = target.encode()
    scope["path"] = target
    for options in ({}, {"redirect_host": "example.com", "allowed_hosts": ["example.com"]}):
        recorded = await run_asgi(HTTPSRedirectMiddleware(ok, **options), scope)
        assert (recorded.status, recorded.header("location")) == (307, location)
