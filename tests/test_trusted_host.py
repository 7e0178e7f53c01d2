"""TrustedHostMiddleware: Starlette's own tests, the behaviour table of edge.md §2.2, T21-T32."""

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
from starlette.responses import PlainTextResponse, RedirectResponse
from starlette.routing import Route

from middlewares import TrustedHostMiddleware
from middlewares._core.outcome import get_outcome
from middlewares._types import Receive, Scope, Send
from middlewares.testing import Recorded, http_scope, run_asgi, websocket_scope

ALLOWED = ["example.com", "*.example.org", "[::1]", "127.0.0.1"]


async def ok(scope: Scope, receive: Receive, send: Send) -> None:
    """Answer 200 OK, or accept and close a WebSocket."""
    if scope["type"] == "websocket":
        await receive()
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.close", "code": 1000})
        return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"OK"})


async def request(
    headers: list[tuple[str, str]] | list[tuple[bytes, bytes]],
    *,
    allowed_hosts: list[str] | None = ALLOWED,
    path: str = "/",
    http_version: str = "1.1",
    **options: Any,
) -> Recorded:
    middleware = TrustedHostMiddleware(ok, allowed_hosts=allowed_hosts, **options)
    scope = http_scope("GET", path, http_version=http_version)
    scope["headers"] = [
        (
            k.encode("latin-1") if isinstance(k, str) else k,
            v.encode("latin-1") if isinstance(v, str) else v,
        )
        for k, v in headers
    ]
    return await run_asgi(middleware, scope)


# --- Starlette's tests (tests/middleware/test_trusted_host.py), adapted -------------------------


def homepage(request: Request) -> PlainTextResponse:
    return PlainTextResponse("OK", status_code=200)


def TestClient(
    app: Any, base_url: str = "http://testserver", follow_redirects: bool = True
) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app)
    return httpx.AsyncClient(
        transport=transport, base_url=base_url, follow_redirects=follow_redirects
    )


@pytest.mark.anyio
async def test_starlette_trusted_host_middleware() -> None:
    app = Starlette(
        routes=[Route("/", endpoint=homepage)],
        middleware=[
            Middleware(TrustedHostMiddleware, allowed_hosts=["testserver", "*.testserver"])
        ],
    )
    assert (await TestClient(app).get("/")).status_code == 200
    assert (
        await TestClient(app, base_url="http://subdomain.testserver").get("/")
    ).status_code == 200
    response = await TestClient(app, base_url="http://invalidhost").get("/")
    assert response.status_code == 400
    assert response.text == "Invalid host header"
    assert response.headers["content-type"] == "text/plain; charset=utf-8"


def test_starlette_default_allowed_hosts() -> None:
    middleware = TrustedHostMiddleware(Starlette())
    assert middleware.allowed_hosts == ("*",)


@pytest.mark.anyio
async def test_starlette_www_redirect() -> None:
    app = Starlette(
        routes=[Route("/", endpoint=homepage)],
        middleware=[Middleware(TrustedHostMiddleware, allowed_hosts=["www.example.com"])],
    )
    response = await TestClient(app, base_url="https://example.com").get("/")
    assert response.status_code == 200
    assert response.url == "https://www.example.com/"


@pytest.mark.anyio
async def test_starlette_www_redirect_is_307_and_keeps_path_and_query() -> None:
    app = Starlette(
        routes=[Route("/a b", endpoint=homepage)],
        middleware=[Middleware(TrustedHostMiddleware, allowed_hosts=["www.example.com"])],
    )
    client = TestClient(app, base_url="https://example.com:8443", follow_redirects=False)
    response = await client.post("/a%20b?x=1")
    assert response.status_code == 307
    assert response.headers["location"] == "https://www.example.com:8443/a%20b?x=1"
    reference = RedirectResponse("https://www.example.com:8443/a%20b?x=1")
    assert response.headers.get("content-type") == reference.headers.get("content-type")


@pytest.mark.anyio
async def test_starlette_www_redirect_can_be_turned_off() -> None:
    app = Starlette(
        routes=[Route("/", endpoint=homepage)],
        middleware=[
            Middleware(TrustedHostMiddleware, allowed_hosts=["www.example.com"], www_redirect=False)
        ],
    )
    assert (await TestClient(app, base_url="https://example.com").get("/")).status_code == 400


@pytest.mark.parametrize(
    ("host", "status"),
    [
        pytest.param("[::1]", 200, id="IPv6 literal"),
        pytest.param("[::1]:8000", 200, id="IPv6 literal and port"),
        pytest.param("[::2]", 400, id="another IPv6 literal"),
        pytest.param("127.0.0.1:8000", 200, id="IPv4 and port"),
        pytest.param("example.com:8000", 200, id="port stripped"),
        pytest.param("a.example.org", 200, id="wildcard"),
        pytest.param("example.org", 400, id="wildcard not the apex"),
    ],
)
@pytest.mark.anyio
async def test_starlette_hosts(host: str, status: int) -> None:
    app = Starlette(
        routes=[Route("/", endpoint=homepage)],
        middleware=[Middleware(TrustedHostMiddleware, allowed_hosts=ALLOWED)],
    )
    assert (await TestClient(app).get("/", headers={"host": host})).status_code == status


# --- Traps ---------------------------------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("entry", "host", "status"),
    [
        pytest.param("localhost:8000", "localhost:8000", 200, id="listed port"),
        pytest.param("localhost:8000", "localhost:8001", 400, id="other port"),
        pytest.param("localhost:8000", "localhost", 400, id="no port is the default port"),
        pytest.param("localhost:80", "localhost", 200, id="entry with the default port"),
    ],
)
async def test_t21_an_entry_with_a_port_works_as_documented(
    entry: str, host: str, status: int
) -> None:
    assert (await request([("host", host)], allowed_hosts=[entry])).status == status


@pytest.mark.anyio
async def test_t22_a_port_in_the_request_is_allowed() -> None:
    assert (await request([("host", "example.com:8080")])).status == 200


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("entry", "host", "status"),
    [
        pytest.param("[::1]", "[::1]:8000", 200, id="bracketed entry"),
        pytest.param("::1", "[::1]:8000", 200, id="bare entry"),
        pytest.param("::1", "[0:0::1]", 200, id="another spelling"),
        pytest.param("::1", "[::1]evil", 400, id="text after the literal"),
        pytest.param("::1", "[::1]]x", 400, id="two brackets"),
        pytest.param("::1", "::1", 400, id="unbracketed"),
    ],
)
async def test_t23_ipv6_literals(entry: str, host: str, status: int) -> None:
    assert (await request([("host", host)], allowed_hosts=[entry])).status == status


@pytest.mark.anyio
async def test_t24_a_trailing_dot_is_the_same_host_for_the_check_and_the_redirect() -> None:
    assert (await request([("host", "example.com.")])).status == 200
    result = await request([("host", "example.com.")], allowed_hosts=["www.example.com"])
    assert result.status == 307
    assert result.header("location") == "http://www.example.com/"


@pytest.mark.anyio
async def test_t25_case_does_not_matter() -> None:
    assert (await request([("host", "EXAMPLE.com")])).status == 200
    assert (await request([("host", "example.com")], allowed_hosts=["Example.COM"])).status == 200


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("host", "status"),
    [
        pytest.param("a.example.org", 200, id="subdomain"),
        pytest.param("a.b.example.org", 200, id="any depth"),
        pytest.param("example.org", 400, id="apex is not implied"),
        pytest.param("evilexample.org", 400, id="no label boundary"),
        pytest.param("..example.org", 400, id="empty label"),
        pytest.param("evil.com/.example.org", 400, id="a path"),
    ],
)
async def test_t26_wildcards_respect_label_boundaries(host: str, status: int) -> None:
    assert (await request([("host", host)])).status == status


@pytest.mark.anyio
@pytest.mark.parametrize(
    "host",
    [
        pytest.param("a/b", id="slash"),
        pytest.param("a?b", id="question mark"),
        pytest.param("a#b", id="hash"),
        pytest.param("user@example.com", id="userinfo"),
        pytest.param("example.com:99999", id="port out of range"),
        pytest.param("example.com\r\nx: 1", id="CR LF"),
    ],
)
async def test_t27_a_malformed_host_is_400_before_the_app_even_when_all_allowed(host: str) -> None:
    result = await request([("host", host)], allowed_hosts=None)
    assert result.status == 400
    assert result.body == b"Invalid host header"


@pytest.mark.anyio
async def test_t27_non_ascii_and_huge_hosts_are_400() -> None:
    assert (await request([(b"host", "ex\u00e4mple.com".encode())])).status == 400
    assert (await request([(b"host", b"a" * 65536)])).status == 400


@pytest.mark.anyio
async def test_t28_excluded_paths_skip_the_check() -> None:
    options = {"exclude_paths": ["/healthz", "/probes/*"]}
    assert (await request([("host", "10.1.2.3")], path="/healthz", **options)).status == 200
    assert (await request([("host", "10.1.2.3")], path="/probes/ready", **options)).status == 200
    assert (await request([("host", "10.1.2.3")], path="/other", **options)).status == 400


@pytest.mark.anyio
async def test_t29_websocket_refusal_is_a_close_and_a_denial_only_when_asked_and_offered() -> None:
    middleware = TrustedHostMiddleware(ok, allowed_hosts=ALLOWED)
    offered = websocket_scope(
        headers=[("host", "evil.example")], extensions={"websocket.http.response": {}}
    )
    closed = await run_asgi(middleware, offered)
    assert closed.messages == [{"type": "websocket.close", "code": 1008}]
    asking = TrustedHostMiddleware(ok, allowed_hosts=ALLOWED, websocket_denial_response=True)
    denied = await run_asgi(asking, offered)
    assert denied.start["type"] == "websocket.http.response.start"
    assert denied.status == 400
    not_offered = await run_asgi(asking, websocket_scope(headers=[("host", "evil.example")]))
    assert not_offered.messages == [{"type": "websocket.close", "code": 1008}]
    allowed = await run_asgi(middleware, websocket_scope(headers=[("host", "example.com")]))
    assert allowed.messages[0]["type"] == "websocket.accept"


@pytest.mark.anyio
async def test_t29_a_websocket_to_the_bare_name_is_refused_not_redirected() -> None:
    middleware = TrustedHostMiddleware(ok, allowed_hosts=["www.example.com"])
    result = await run_asgi(middleware, websocket_scope(headers=[("host", "example.com")]))
    assert result.messages[0]["type"] == "websocket.close"


@pytest.mark.anyio
async def test_t30_a_bad_host_never_reaches_routing_or_slash_redirects() -> None:
    reached: list[str] = []

    def page(request: Request) -> PlainTextResponse:
        reached.append(str(request.url))
        return PlainTextResponse("OK")

    app = Starlette(
        routes=[Route("/mcp/", endpoint=page)],
        middleware=[Middleware(TrustedHostMiddleware, allowed_hosts=["example.com"])],
    )
    client = TestClient(app, base_url="http://example.com", follow_redirects=False)
    response = await client.get("/mcp", headers={"host": "evil.example"})
    assert response.status_code == 400
    assert "location" not in response.headers
    assert reached == []


@pytest.mark.parametrize(
    ("options", "error"),
    [
        pytest.param({"allowed_hosts": "example.com"}, TypeError, id="a string, not a list"),
        pytest.param({"allowed_hosts": ["ex*ample.com"]}, ValueError, id="star inside"),
        pytest.param({"allowed_hosts": ["*example.com"]}, ValueError, id="star without a dot"),
        pytest.param({"allowed_hosts": ["http://example.com"]}, ValueError, id="a URL"),
        pytest.param({"exclude_paths": ["healthz"]}, ValueError, id="path without a slash"),
    ],
)
def test_t31_misconfiguration_raises_at_construction(
    options: dict[str, Any], error: type[Exception]
) -> None:
    with pytest.raises(error):
        TrustedHostMiddleware(ok, **options)


@pytest.mark.anyio
async def test_t32_two_host_fields_are_400_even_if_both_are_allowed() -> None:
    result = await request([("host", "example.com"), ("host", "example.com")])
    assert result.status == 400


@pytest.mark.anyio
async def test_missing_host_is_400_except_http_1_0_when_all_are_allowed() -> None:
    assert (await request([])).status == 400
    assert (await request([], allowed_hosts=None)).status == 400
    assert (await request([], allowed_hosts=None, http_version="1.0")).status == 200
    assert (await request([], http_version="1.0")).status == 400


@pytest.mark.anyio
async def test_a_refusal_records_the_outcome() -> None:
    scopes: list[Scope] = []

    async def outer(scope: Scope, receive: Receive, send: Send) -> None:
        scopes.append(scope)
        await TrustedHostMiddleware(ok, allowed_hosts=ALLOWED)(scope, receive, send)

    await run_asgi(outer, http_scope(headers=[("host", "evil.example")]))
    assert get_outcome(scopes[0]) == "forbidden"


@given(st.binary(max_size=80))
def test_arbitrary_host_bytes_give_200_or_400(raw: bytes) -> None:
    result = anyio.run(lambda: request([(b"host", raw)], allowed_hosts=None))
    assert result.status in (200, 400)


@pytest.mark.anyio
async def test_remembered_verdicts_stay_bounded_and_correct() -> None:
    middleware = TrustedHostMiddleware(ok, allowed_hosts=["example.com"])
    statuses = []
    for index in range(1100):
        scope = http_scope(headers=[("host", f"h{index}.example.net")])
        statuses.append((await run_asgi(middleware, scope)).status)
    allowed = await run_asgi(middleware, http_scope(headers=[("host", "example.com")]))
    assert set(statuses) == {400}
    assert allowed.status == 200
    assert len(middleware._verdicts) <= 1024


@pytest.mark.anyio
async def test_entries_with_ports_are_decided_per_scheme() -> None:
    middleware = TrustedHostMiddleware(ok, allowed_hosts=["example.com:443"])
    secure = http_scope(headers=[("host", "example.com")], scheme="https")
    plain = http_scope(headers=[("host", "example.com")])
    assert (await run_asgi(middleware, secure)).status == 200
    assert (await run_asgi(middleware, plain)).status == 400


@pytest.mark.anyio
async def test_the_www_redirect_keeps_a_target_that_is_not_origin_form_on_the_host() -> None:
    scope = http_scope(headers=[("host", "example.com")])
    scope["raw_path"] = b"@evil.com/"
    scope["path"] = "@evil.com/"
    recorded = await run_asgi(TrustedHostMiddleware(ok, allowed_hosts=["www.example.com"]), scope)
    assert recorded.header("location") == "http://www.example.com/@evil.com/"
