"""SecurityHeadersMiddleware: Helmet's defaults, merging with the app's headers, HSTS only over
https, per-path overrides, presets, reporting, errors, and each trap of the reference
(T41, T42, T44, T45, T52–T59) that is not about nonces."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from middlewares._types import ASGIApp, Receive, Scope, Send
from middlewares.security_headers import (
    DEFAULT_CSP,
    JSON_API_PRESET,
    SecurityHeadersMiddleware,
    extend_directives,
    fastapi_docs_overrides,
)
from middlewares.testing import Recorded, http_scope, run_asgi, websocket_scope

pytestmark = pytest.mark.anyio

HELMET_CSP = (
    "default-src 'self';base-uri 'self';font-src 'self' https: data:;form-action 'self';"
    "frame-ancestors 'self';img-src 'self' data:;object-src 'none';script-src 'self';"
    "script-src-attr 'none';style-src 'self' https: 'unsafe-inline';upgrade-insecure-requests"
)
# edge.md §4.1, minus X-Powered-By (removed, tested below) and COEP (off).
HELMET_DEFAULTS = {
    "content-security-policy": HELMET_CSP,
    "cross-origin-opener-policy": "same-origin",
    "cross-origin-resource-policy": "same-origin",
    "origin-agent-cluster": "?1",
    "referrer-policy": "no-referrer",
    "strict-transport-security": "max-age=31536000; includeSubDomains",
    "x-content-type-options": "nosniff",
    "x-dns-prefetch-control": "off",
    "x-download-options": "noopen",
    "x-frame-options": "SAMEORIGIN",
    "x-permitted-cross-domain-policies": "none",
    "x-xss-protection": "0",
}


def app_with(
    *headers: tuple[bytes, bytes], status: int = 200, content_type: bytes = b"text/html"
) -> ASGIApp:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        raw = [(b"content-type", content_type), *headers]
        await send({"type": "http.response.start", "status": status, "headers": raw})
        await send({"type": "http.response.body", "body": b"ok"})

    return app


async def respond(
    app: ASGIApp | None = None,
    *,
    path: str = "/",
    scheme: str = "https",
    host: str = "app.example.com",
    **options: Any,
) -> Recorded:
    middleware = SecurityHeadersMiddleware(app or app_with(), **options)
    scope = http_scope("GET", path, scheme=scheme, headers={"host": host})
    return await run_asgi(middleware, scope)


def added(recorded: Recorded) -> dict[str, str]:
    """The headers the middleware added, by lower-case name (the app only sets content-type)."""
    return {
        k.decode().lower(): v.decode() for k, v in recorded.headers if k.lower() != b"content-type"
    }


async def test_defaults_are_helmets_header_set() -> None:
    recorded = await respond()
    assert added(recorded) == HELMET_DEFAULTS
    assert recorded.body == b"ok"


async def test_each_header_is_sent_once() -> None:
    recorded = await respond()
    names = [k for k, _ in recorded.headers]
    assert len(names) == len(set(names))


@pytest.mark.parametrize(
    ("option", "value", "header", "expected"),
    [
        pytest.param("frame_options", "deny", "x-frame-options", "DENY", id="frame options"),
        pytest.param(
            "referrer_policy",
            ["no-referrer", "strict-origin-when-cross-origin"],
            "referrer-policy",
            "no-referrer, strict-origin-when-cross-origin",
            id="referrer policy fallback list",
        ),
        pytest.param(
            "cross_origin_embedder_policy",
            "credentialless",
            "cross-origin-embedder-policy",
            "credentialless",
            id="COEP when asked",
        ),
        pytest.param(
            "cross_origin_opener_policy",
            "same-origin-allow-popups",
            "cross-origin-opener-policy",
            "same-origin-allow-popups",
            id="COOP for OAuth popups",
        ),
        pytest.param("x_dns_prefetch_control", "on", "x-dns-prefetch-control", "on", id="dns"),
        pytest.param(
            "permissions_policy",
            {"camera": [], "geolocation": ["self", "https://maps.example"], "fullscreen": "*"},
            "permissions-policy",
            'camera=(), geolocation=(self "https://maps.example"), fullscreen=*',
            id="permissions policy as structured fields",
        ),
        pytest.param(
            "strict_transport_security_max_age",
            600,
            "strict-transport-security",
            "max-age=600; includeSubDomains",
            id="hsts max age",
        ),
        pytest.param(
            "strict_transport_security_preload",
            True,
            "strict-transport-security",
            "max-age=31536000; includeSubDomains; preload",
            id="hsts preload",
        ),
    ],
)
async def test_every_header_can_be_changed(
    option: str, value: Any, header: str, expected: str
) -> None:
    assert added(await respond(**{option: value}))[header] == expected


@pytest.mark.parametrize(
    ("option", "value", "header"),
    [
        pytest.param("content_security_policy", None, "content-security-policy", id="csp"),
        pytest.param("cross_origin_opener_policy", None, "cross-origin-opener-policy", id="coop"),
        pytest.param(
            "cross_origin_resource_policy", None, "cross-origin-resource-policy", id="corp"
        ),
        pytest.param("origin_agent_cluster", False, "origin-agent-cluster", id="oac"),
        pytest.param("referrer_policy", None, "referrer-policy", id="referrer"),
        pytest.param("strict_transport_security", False, "strict-transport-security", id="hsts"),
        pytest.param("x_content_type_options", False, "x-content-type-options", id="nosniff"),
        pytest.param("x_dns_prefetch_control", None, "x-dns-prefetch-control", id="dns"),
        pytest.param("x_download_options", False, "x-download-options", id="noopen"),
        pytest.param("frame_options", None, "x-frame-options", id="xfo"),
        pytest.param(
            "x_permitted_cross_domain_policies", None, "x-permitted-cross-domain-policies", id="xp"
        ),
        pytest.param("x_xss_protection", False, "x-xss-protection", id="xss"),
    ],
)
async def test_every_header_can_be_turned_off(option: str, value: Any, header: str) -> None:
    headers = added(await respond(**{option: value}))
    assert header not in headers
    assert len(headers) == len(HELMET_DEFAULTS) - 1


# T52: merging with headers the app set.


async def test_T52_app_set_headers_win_by_default() -> None:
    app = app_with(
        (b"Content-Security-Policy", b"default-src 'none'"), (b"X-Frame-Options", b"DENY")
    )
    recorded = await respond(app)
    assert recorded.header_all("content-security-policy") == ["default-src 'none'"]
    assert recorded.header_all("x-frame-options") == ["DENY"]
    assert recorded.header("x-content-type-options") == "nosniff"  # the others still added


async def test_T52_override_mode_replaces_the_apps_headers() -> None:
    app = app_with(
        (b"Content-Security-Policy", b"default-src *"), (b"X-Frame-Options", b"ALLOWALL")
    )
    recorded = await respond(app, mode="override")
    assert recorded.header_all("content-security-policy") == [HELMET_CSP]
    assert recorded.header_all("x-frame-options") == ["SAMEORIGIN"]


async def test_T52_a_second_csp_is_never_appended() -> None:
    app = app_with((b"content-security-policy", b"img-src 'self'"))
    for mode in ("set_if_absent", "override"):
        recorded = await respond(app, mode=mode)
        assert len(recorded.header_all("content-security-policy")) == 1


async def test_the_apps_header_list_is_not_edited() -> None:
    shared = [(b"content-type", b"text/plain")]

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": shared})
        await send({"type": "http.response.body", "body": b""})

    await respond(app)
    assert shared == [(b"content-type", b"text/plain")]


# T41, T42: HSTS only over https, never on localhost, also on redirects.


async def test_T41_no_hsts_over_http() -> None:
    assert "strict-transport-security" not in added(await respond(scheme="http"))


@pytest.mark.parametrize(
    "host",
    [
        pytest.param("localhost", id="localhost"),
        pytest.param("localhost:8443", id="localhost with port"),
        pytest.param("LOCALHOST.", id="upper case with trailing dot"),
        pytest.param("app.localhost", id="a .localhost subdomain"),
    ],
)
async def test_T41_no_hsts_on_localhost_by_default(host: str) -> None:
    assert "strict-transport-security" not in added(await respond(host=host))
    kept = await respond(host=host, strict_transport_security_exclude_localhost=False)
    assert "strict-transport-security" in added(kept)


@pytest.mark.parametrize(
    "host",
    [
        pytest.param("localhost.example.com", id="a domain starting with localhost"),
        pytest.param("notlocalhost", id="a name ending in localhost"),
        pytest.param("[::1]:8443", id="an IPv6 literal"),
    ],
)
async def test_T41_other_hosts_get_hsts(host: str) -> None:
    assert "strict-transport-security" in added(await respond(host=host))


async def test_T41_the_scheme_after_the_proxy_middleware_decides() -> None:
    # Behind a TLS proxy the proxy middleware rewrites scope["scheme"]; a client's own
    # X-Forwarded-Proto is never read here.
    middleware = SecurityHeadersMiddleware(app_with())
    spoofed = http_scope("GET", "/", headers={"x-forwarded-proto": "https", "host": "a.example"})
    assert (await run_asgi(middleware, spoofed)).header("strict-transport-security") is None
    resolved = http_scope("GET", "/", scheme="https", headers={"host": "a.example"})
    assert (await run_asgi(middleware, resolved)).header("strict-transport-security")


@pytest.mark.parametrize("status", [301, 302, 307, 308])
async def test_T42_hsts_on_https_redirects_the_app_sends(status: int) -> None:
    app = app_with((b"location", b"https://www.example.com/"), status=status)
    recorded = await respond(app, host="example.com")
    assert recorded.status == status
    assert recorded.header("strict-transport-security") == "max-age=31536000; includeSubDomains"


# T44, T45: per-path overrides.


async def test_T45_an_override_replaces_the_policy_on_its_paths() -> None:
    overrides = {
        "/embed/*": {"frame_options": None, "content_security_policy": {"default-src": "'self'"}}
    }
    embed = await respond(path="/embed/widget", overrides=overrides)
    assert embed.header("x-frame-options") is None
    assert embed.header("content-security-policy") == "default-src 'self'"
    assert embed.header("x-content-type-options") == "nosniff"  # not overridden: kept
    page = await respond(path="/embedded", overrides=overrides)
    assert page.header("content-security-policy") == HELMET_CSP


async def test_T45_an_override_extends_the_site_policy() -> None:
    extended = extend_directives(DEFAULT_CSP, {"img-src": "https://tiles.example"})
    recorded = await respond(path="/map", overrides={"/map": {"content_security_policy": extended}})
    assert "img-src 'self' data: https://tiles.example;" in recorded.header(
        "content-security-policy"
    )


async def test_T45_false_disables_every_header_on_a_path() -> None:
    recorded = await respond(path="/legacy/page", overrides={"/legacy/*": False})
    assert added(recorded) == {}


async def test_T45_the_first_matching_pattern_wins_and_route_templates_work() -> None:
    overrides = {
        "/items/{id}": {"referrer_policy": "same-origin"},
        "/items/*": {"referrer_policy": "origin"},
    }
    assert (await respond(path="/items/7", overrides=overrides)).header("referrer-policy") == (
        "same-origin"
    )
    assert (await respond(path="/items/7/x", overrides=overrides)).header("referrer-policy") == (
        "origin"
    )


async def test_T44_fastapi_docs_pages_get_their_own_policy() -> None:
    overrides = fastapi_docs_overrides()
    for path in ("/docs", "/docs/oauth2-redirect", "/redoc"):
        csp = (await respond(path=path, overrides=overrides)).header("content-security-policy")
        assert csp is not None
        assert "script-src 'self' https://cdn.jsdelivr.net 'unsafe-inline'" in csp
    api = await respond(path="/items", overrides=overrides)
    assert api.header("content-security-policy") == HELMET_CSP


# T53: cross-origin isolation headers.


async def test_T53_coep_is_off_by_default_and_corp_is_configurable_per_path() -> None:
    overrides = {"/assets/*": {"cross_origin_resource_policy": "cross-origin"}}
    page = await respond(overrides=overrides)
    assert page.header("cross-origin-embedder-policy") is None
    assert page.header("cross-origin-resource-policy") == "same-origin"
    asset = await respond(path="/assets/logo.png", overrides=overrides)
    assert asset.header("cross-origin-resource-policy") == "cross-origin"


# T55: document headers on APIs.


async def test_T55_html_only_is_off_by_default() -> None:
    recorded = await respond(app_with(content_type=b"application/json"))
    assert added(recorded) == HELMET_DEFAULTS


async def test_T55_html_only_keeps_document_headers_off_other_responses() -> None:
    json = added(await respond(app_with(content_type=b"application/json"), html_only=True))
    assert "content-security-policy" not in json
    assert "x-frame-options" not in json
    assert json["x-content-type-options"] == "nosniff"
    assert json["strict-transport-security"]
    html = await respond(app_with(content_type=b"text/html; charset=utf-8"), html_only=True)
    assert added(html) == HELMET_DEFAULTS


async def test_T55_json_api_preset_is_observatorys_policy() -> None:
    recorded = await respond(app_with(content_type=b"application/json"), **JSON_API_PRESET)
    assert recorded.header("content-security-policy") == "default-src 'none';frame-ancestors 'none'"
    assert recorded.header("x-frame-options") == "DENY"


# T56: stale directives and features.


async def test_T56_upgrade_insecure_requests_is_removable() -> None:
    policy = {**DEFAULT_CSP, "upgrade-insecure-requests": None}
    csp = (await respond(content_security_policy=policy)).header("content-security-policy")
    assert csp is not None
    assert "upgrade-insecure-requests" not in csp
    assert csp.startswith("default-src 'self';")


# T57: unknown directives kept (the refusals are in test_security_headers_config.py).


async def test_T57_unknown_directives_pass_through() -> None:
    policy = {"default-src": "'self'", "fenced-frame-src": "'none'"}
    recorded = await respond(content_security_policy=policy)
    assert (
        recorded.header("content-security-policy") == "default-src 'self';fenced-frame-src 'none'"
    )


# T54: reporting.


async def test_T54_report_to_emits_the_directive_the_endpoint_and_report_uri() -> None:
    recorded = await respond(report_to={"csp": "https://r.example/csp"})
    csp = recorded.header("content-security-policy")
    assert csp is not None
    assert csp.endswith(";report-to csp;report-uri https://r.example/csp")
    assert recorded.header("reporting-endpoints") == 'csp="https://r.example/csp"'


async def test_T54_report_uri_and_several_groups() -> None:
    recorded = await respond(
        report_uri="/csp-reports",
        report_to={"csp": "https://r.example/csp", "coop": "https://r.example/coop"},
        content_security_policy_report_only={"script-src": "'self'"},
    )
    assert recorded.header("content-security-policy") is not None
    report_only = recorded.header("content-security-policy-report-only")
    assert report_only == "script-src 'self';report-to csp;report-uri /csp-reports"
    assert recorded.header("reporting-endpoints") == (
        'csp="https://r.example/csp", coop="https://r.example/coop"'
    )


async def test_T54_a_policys_own_report_directives_are_kept() -> None:
    policy = {"default-src": "'self'", "report-to": "mine", "report-uri": "/mine"}
    recorded = await respond(
        content_security_policy=policy, report_to={"csp": "/r"}, report_uri="/other"
    )
    assert recorded.header("content-security-policy") == (
        "default-src 'self';report-to mine;report-uri /mine"
    )


# T58: errors before the response starts.


async def test_T58_a_500_raised_inside_the_app_still_carries_the_headers() -> None:
    async def broken(scope: Scope, receive: Receive, send: Send) -> None:
        raise RuntimeError("boom")

    middleware = SecurityHeadersMiddleware(broken)
    recorded = Recorded()

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    async def send(message: dict[str, Any]) -> None:
        recorded.messages.append(message)

    scope = http_scope("GET", "/", scheme="https", headers={"host": "a.example"})
    with pytest.raises(RuntimeError, match="boom"):
        await middleware(scope, receive, send)
    assert recorded.status == 500
    assert recorded.body == b"Internal Server Error"
    assert recorded.header("content-security-policy") == HELMET_CSP
    assert recorded.header("strict-transport-security")


async def test_T58_an_error_after_the_response_started_is_only_re_raised() -> None:
    async def half(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        raise RuntimeError("mid-body")

    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    with pytest.raises(RuntimeError, match="mid-body"):
        await SecurityHeadersMiddleware(half)(http_scope(), receive, send)
    assert [m["type"] for m in sent] == ["http.response.start"]


# T59: headers the middleware can and cannot see.


async def test_T59_removes_x_powered_by_the_app_set() -> None:
    app = app_with((b"X-Powered-By", b"Express"), (b"server", b"app/1.0"))
    recorded = await respond(app)
    assert recorded.header("x-powered-by") is None
    assert recorded.header("server") == "app/1.0"  # not asked for: kept
    recorded = await respond(app, remove_headers=["X-Powered-By", "Server"])
    assert recorded.header("server") is None


# Behaviour table, edge.md §4.3: every status and content type gets the headers.


@pytest.mark.parametrize("status", [200, 204, 304, 404, 500])
@pytest.mark.parametrize("content_type", [b"text/html", b"application/json", b"image/png"])
async def test_table_every_status_and_content_type_gets_the_headers(
    status: int, content_type: bytes
) -> None:
    recorded = await respond(app_with(status=status, content_type=content_type))
    assert added(recorded) == HELMET_DEFAULTS


async def test_websocket_scopes_pass_through_untouched() -> None:
    seen: list[Scope] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope)
        await receive()
        await send({"type": "websocket.accept", "headers": [(b"x-app", b"1")]})
        await send({"type": "websocket.close", "code": 1000})

    scope = websocket_scope("/ws", scheme="wss")
    recorded = await run_asgi(
        SecurityHeadersMiddleware(app), scope, websocket_messages=[{"type": "websocket.connect"}]
    )
    assert seen == [scope]
    accept = recorded.of_type("websocket.accept")[0]
    assert accept["headers"] == [(b"x-app", b"1")]
    assert "state" not in scope or "csp_nonce" not in scope["state"]


async def test_unknown_messages_pass_through() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.trailers", "headers": [(b"x-t", b"1")]})
        await send({"type": "http.response.body", "body": b"ok"})

    trailers = {"type": "http.response.trailers", "headers": [(b"x-t", b"1")]}
    middleware = SecurityHeadersMiddleware(app)
    recorded = await run_asgi(middleware, http_scope(), validate=False)
    assert trailers in recorded.messages


def test_header_names_use_the_specs_spelling() -> None:
    for name in HELMET_DEFAULTS:
        assert re.fullmatch(r"[a-z0-9-]+", name)


async def test_fastapi_example_serves_docs_under_the_override() -> None:
    from examples.security_headers_fastapi import app

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="https://shop.example") as client:
        api = await client.get("/items/3")
        docs = await client.get("/docs")
    assert api.headers["content-security-policy"] == "default-src 'none';frame-ancestors 'none'"
    assert api.headers["x-frame-options"] == "DENY"
    assert "https://cdn.jsdelivr.net" in docs.headers["content-security-policy"]
    assert "cdn.jsdelivr.net" in docs.text
    assert docs.headers["strict-transport-security"] == "max-age=31536000; includeSubDomains"


@pytest.mark.server
def test_T59_the_servers_own_headers_go_only_with_the_server_flag(live_server: Any) -> None:
    app = SecurityHeadersMiddleware(app_with(), remove_headers=["Server", "Date"])
    with live_server(app) as url:
        response = httpx.get(url)
    # uvicorn adds these after the app: no middleware sees them.
    assert response.headers["server"] == "uvicorn"
    assert "date" in response.headers
    with live_server(app, server_header=False, date_header=False) as url:
        response = httpx.get(url)
    assert "server" not in response.headers
    assert "date" not in response.headers
    assert response.headers["x-content-type-options"] == "nosniff"
