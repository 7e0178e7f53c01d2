"""CSRFMiddleware's Fetch Metadata and Origin checks (limits.md §2, traps 20-27), in-process."""

from __future__ import annotations

import json
import logging
import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from middlewares._core.outcome import get_outcome
from middlewares._core.respond import send_response
from middlewares._types import Receive, Scope, Send
from middlewares.csrf import CSRFMiddleware, judge
from middlewares.testing import Recorded, http_scope, run_asgi

pytestmark = pytest.mark.anyio

HOST = "app.example.com"
SITE = f"https://{HOST}"


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    await send_response(send, 200, [(b"vary", b"Accept-Encoding")], b"ok")


async def request(
    middleware: Any,
    method: str = "POST",
    path: str = "/form",
    *,
    scheme: str = "https",
    **headers: str,
) -> Recorded:
    fields = {"host": HOST, **{k.replace("_", "-"): v for k, v in headers.items()}}
    return await run_asgi(middleware, http_scope(method, path, headers=fields, scheme=scheme))


def never(origin: bytes) -> bool:
    return False


def own() -> str:
    return SITE


@pytest.mark.parametrize(
    ("site", "origin", "allow_same_site", "expected"),
    [
        pytest.param(b"same-origin", None, False, None, id="same-origin passes"),
        pytest.param(b"none", None, False, None, id="none (typed in the address bar) passes"),
        pytest.param(b"same-site", None, True, None, id="same-site passes when allowed"),
        pytest.param(b"same-site", SITE.encode(), False, "same-site", id="same-site refused"),
        pytest.param(b"cross-site", b"https://evil.example", False, "cross-site", id="cross"),
        pytest.param(b"Same-Origin", None, False, "never send", id="values are case-sensitive"),
        pytest.param(b"", None, False, "never send", id="empty Sec-Fetch-Site"),
        pytest.param(None, None, False, "", id="neither header"),
        pytest.param(None, b"null", False, "'null'", id="null origin"),
        pytest.param(None, SITE.encode(), False, None, id="own origin passes"),
        pytest.param(None, b"http://app.example.com", False, "match", id="other scheme refused"),
        pytest.param(None, b"https://app.example.com:8443", False, "match", id="other port"),
        pytest.param(None, b"\xff\r\nx", False, "match", id="garbage origin refused"),
    ],
)
def test_judge(
    site: bytes | None, origin: bytes | None, allow_same_site: bool, expected: str | None
) -> None:
    reason = judge(site, origin, own, allow_same_site=allow_same_site, trusted=never)
    if expected is None or expected == "":
        assert reason == expected
    else:
        assert reason is not None
        assert expected in reason


def test_judge_reads_the_own_origin_only_when_origin_decides() -> None:
    def fail() -> str:
        raise AssertionError("own origin asked")

    assert judge(b"same-origin", b"x", fail, allow_same_site=False, trusted=never) is None
    assert judge(None, None, fail, allow_same_site=False, trusted=never) == ""


@pytest.mark.parametrize("method", ["GET", "HEAD", "OPTIONS", "TRACE"])
async def test_safe_methods_pass_untouched_without_vary(method: str) -> None:
    recorded = await request(CSRFMiddleware(app), method, sec_fetch_site="cross-site")
    assert recorded.status == 200
    assert recorded.header("vary") == "Accept-Encoding"


async def test_safe_methods_get_the_original_callables() -> None:
    seen: list[tuple[Receive, Send]] = []

    async def spy(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append((receive, send))

    async def receive() -> dict[str, Any]:
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        return None

    await CSRFMiddleware(spy)(http_scope("GET"), receive, send)
    assert seen == [(receive, send)]


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({"sec_fetch_site": "same-origin", "origin": SITE}, id="same-origin"),
        pytest.param({"sec_fetch_site": "none"}, id="Sec-Fetch-Site none (trap 23)"),
        pytest.param({"origin": SITE}, id="Origin equals the request's origin"),
        pytest.param(
            {"origin": SITE, "host": "APP.example.com:443"}, id="Host in another spelling"
        ),
        pytest.param({}, id="neither header: a non-browser client"),
    ],
)
async def test_same_origin_unsafe_requests_pass(headers: dict[str, str]) -> None:
    recorded = await request(CSRFMiddleware(app), "POST", **headers)
    assert recorded.status == 200
    assert recorded.body == b"ok"


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        pytest.param(
            {"sec_fetch_site": "cross-site", "origin": "https://evil.example"},
            "cross-site request",
            id="cross-site",
        ),
        pytest.param(
            {"sec_fetch_site": "same-site", "origin": "https://blog.example.com"},
            "same site",
            id="sibling subdomain (same-site)",
        ),
        pytest.param({"origin": "https://evil.example"}, "does not match", id="foreign Origin"),
        pytest.param({"origin": "null"}, "'null'", id="Origin null (trap 21)"),
        pytest.param({"sec_fetch_site": "cross-site-ish"}, "never send", id="garbage SFS"),
    ],
)
async def test_cross_origin_unsafe_requests_are_refused_with_a_reason(
    headers: dict[str, str], reason: str
) -> None:
    called: list[Scope] = []

    async def spy(scope: Scope, receive: Receive, send: Send) -> None:
        called.append(scope)

    recorded = await request(CSRFMiddleware(spy), "POST", **headers)
    assert recorded.status == 403
    assert reason in recorded.body.decode()
    assert recorded.body.startswith(b"Forbidden: ")
    assert recorded.header("content-type") == "text/plain; charset=utf-8"
    assert called == []


async def test_duplicated_sec_fetch_site_is_not_a_browser_and_is_refused() -> None:
    scope = http_scope(
        "POST",
        headers=[("host", HOST), ("sec-fetch-site", "same-origin"), ("sec-fetch-site", "none")],
        scheme="https",
    )
    recorded = await run_asgi(CSRFMiddleware(app), scope)
    assert recorded.status == 403


async def test_login_csrf_a_cookieless_cross_site_login_post_is_refused_trap_26() -> None:
    recorded = await request(
        CSRFMiddleware(app), "POST", "/login", sec_fetch_site="cross-site", origin="https://x.io"
    )
    assert recorded.status == 403


async def test_plain_http_without_sec_fetch_site_compares_origin_with_host_trap_22() -> None:
    middleware = CSRFMiddleware(app)
    lan = await request(middleware, scheme="http", origin=f"http://{HOST}")
    assert lan.status == 200
    upgraded = await request(middleware, scheme="http", origin=SITE)
    assert upgraded.status == 403


@pytest.mark.parametrize(
    ("policy", "status"),
    [
        pytest.param("allow", 200, id="allow (the default, as Go)"),
        pytest.param("reject", 403, id="reject"),
    ],
)
async def test_requests_with_neither_header_follow_the_policy_trap_22(
    policy: Any, status: int
) -> None:
    recorded = await request(CSRFMiddleware(app, non_browser=policy), "POST")
    assert recorded.status == status


async def test_reject_policy_names_the_missing_headers() -> None:
    recorded = await request(CSRFMiddleware(app, non_browser="reject"), "DELETE")
    assert b"neither Sec-Fetch-Site nor Origin" in recorded.body


async def test_scheme_comes_from_the_proxy_model_not_forwarding_headers_trap_20() -> None:
    middleware = CSRFMiddleware(app)
    # ProxyHeadersMiddleware (or uvicorn's proxy_headers) resolved a trusted hop: scope says https.
    behind_trusted_proxy = await request(middleware, scheme="https", origin=SITE)
    assert behind_trusted_proxy.status == 200
    # An untrusted peer's X-Forwarded-Proto is never read: the scheme stays http.
    spoofed = await request(middleware, scheme="http", origin=SITE, x_forwarded_proto="https")
    assert spoofed.status == 403


@pytest.mark.parametrize(
    "host",
    [pytest.param(None, id="no Host"), pytest.param("\xe9x", id="non-ASCII Host")],
)
async def test_origin_fallback_without_a_usable_host_refuses(host: str | None) -> None:
    headers = [("origin", SITE)] + ([("host", host)] if host is not None else [])
    scope = http_scope("POST", headers=headers, scheme="https")
    assert (await run_asgi(CSRFMiddleware(app), scope)).status == 403


@pytest.mark.parametrize(
    ("pattern", "path", "exempt"),
    [
        pytest.param("/webhooks/", "/webhooks/", True, id="'/webhooks/' exempts itself"),
        pytest.param("/webhooks/", "/webhooks", False, id="'/webhooks/' not '/webhooks'"),
        pytest.param("/webhooks/", "/webhooksX", False, id="'/webhooks/' not '/webhooksX'"),
        pytest.param("/webhooks/", "/webhooks/x", False, id="'/webhooks/' not below it"),
        pytest.param("/webhooks/*", "/webhooks/github", True, id="'/webhooks/*' below it"),
        pytest.param("/webhooks/*", "/webhooksX", False, id="'/webhooks/*' not '/webhooksX'"),
        pytest.param("/hooks/{name}", "/hooks/github", True, id="route template"),
        pytest.param("/hooks/{name}", "/hooks/github/x", False, id="template: one segment"),
        pytest.param(re.compile(r"/api/\d+"), "/api/12", True, id="regex in full"),
        pytest.param(re.compile(r"/api/\d+"), "/api/12/delete", False, id="regex not a prefix"),
    ],
)
async def test_exempt_paths_are_never_broader_than_written_trap_24(
    pattern: Any, path: str, exempt: bool
) -> None:
    for middleware in (
        CSRFMiddleware(app, exclude_paths=[pattern]),
        CSRFMiddleware(app, exempt_urls=[pattern]),
    ):
        recorded = await request(middleware, "POST", path, sec_fetch_site="cross-site")
        assert recorded.status == (200 if exempt else 403)


def test_exempt_paths_are_reported_at_startup(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="middlewares.csrf"):
        CSRFMiddleware(app, exclude_paths=["/webhooks/*"], exempt_urls=[re.compile(r"/a/\d+")])
    [line] = caplog.messages
    assert line == r"CSRF: requests to these paths are not checked: /webhooks/*, /a/\d+"


async def test_vary_only_where_the_decision_read_the_headers_trap_25() -> None:
    middleware = CSRFMiddleware(app, exclude_paths=["/webhooks/*"])
    checked = await request(middleware, "POST", sec_fetch_site="same-origin")
    assert checked.header("vary") == "Accept-Encoding, Sec-Fetch-Site, Origin"
    refused = await request(middleware, "POST", sec_fetch_site="cross-site")
    assert refused.header("vary") == "Sec-Fetch-Site, Origin"
    skipped = await request(middleware, "POST", "/webhooks/in", sec_fetch_site="cross-site")
    assert skipped.header("vary") == "Accept-Encoding"
    safe = await request(middleware, "GET", sec_fetch_site="cross-site")
    assert safe.header("vary") == "Accept-Encoding"


async def test_vary_merge_never_edits_the_apps_header_list() -> None:
    shared = [(b"vary", b"Cookie")]

    async def reuses_headers(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": shared})
        await send({"type": "http.response.body", "body": b""})

    recorded = await request(CSRFMiddleware(reuses_headers), sec_fetch_site="same-origin")
    assert recorded.header("vary") == "Cookie, Sec-Fetch-Site, Origin"
    assert shared == [(b"vary", b"Cookie")]


@pytest.mark.parametrize(
    ("trusted", "origin", "site"),
    [
        pytest.param(["https://partner.example"], "https://partner.example", "cross-site", id="x"),
        pytest.param(["https://*.example.com"], "https://blog.example.com", "same-site", id="*."),
        pytest.param(["https://partner.example:443"], "https://partner.example", None, id="port"),
    ],
)
async def test_trusted_origins_pass(trusted: list[str], origin: str, site: str | None) -> None:
    headers = {"origin": origin} | ({"sec_fetch_site": site} if site else {})
    recorded = await request(CSRFMiddleware(app, trusted_origins=trusted), **headers)
    assert recorded.status == 200


async def test_untrusted_origins_stay_refused_next_to_trusted_ones() -> None:
    middleware = CSRFMiddleware(app, trusted_origins=["https://*.example.com"])
    for origin in ("https://example.com", "https://xexample.com", "http://a.example.com"):
        recorded = await request(middleware, origin=origin, sec_fetch_site="cross-site")
        assert recorded.status == 403, origin


async def test_allow_same_site_lets_sibling_subdomains_through() -> None:
    middleware = CSRFMiddleware(app, allow_same_site=True)
    recorded = await request(middleware, sec_fetch_site="same-site", origin="https://b.example.com")
    assert recorded.status == 200


async def test_custom_safe_methods() -> None:
    middleware = CSRFMiddleware(app, safe_methods=["get", "PROPFIND"])
    assert (await request(middleware, "PROPFIND", sec_fetch_site="cross-site")).status == 200
    assert (await request(middleware, "HEAD", sec_fetch_site="cross-site")).status == 403


async def test_problem_details_refusal() -> None:
    middleware = CSRFMiddleware(app, problem_details=True)
    recorded = await request(middleware, origin="null")
    assert recorded.header("content-type") == "application/problem+json"
    document = json.loads(recorded.body)
    assert document["status"] == 403
    assert "'null'" in document["detail"]


async def test_refusal_records_the_outcome_and_logs_escaped_values(
    caplog: pytest.LogCaptureFixture,
) -> None:
    scope = http_scope(
        "POST",
        "/form",
        headers=[("host", HOST), ("sec-fetch-site", "x\r\nFAKE"), ("origin", "\xff\r\n")],
    )
    with caplog.at_level(logging.DEBUG, logger="middlewares.csrf"):
        recorded = await run_asgi(CSRFMiddleware(app), scope)
    assert recorded.status == 403
    assert get_outcome(scope) == "forbidden"
    [line] = caplog.messages
    assert "\r" not in line
    assert "\n" not in line
    assert "'x\\r\\nFAKE'" in line
    assert "/form" in line


@given(
    site=st.one_of(st.none(), st.binary(max_size=30)),
    origin=st.one_of(st.none(), st.binary(max_size=60)),
    host=st.one_of(st.none(), st.binary(max_size=30)),
)
async def test_arbitrary_header_bytes_give_200_or_403_never_an_error(
    site: bytes | None, origin: bytes | None, host: bytes | None
) -> None:
    headers = [
        (name, value)
        for name, value in ((b"sec-fetch-site", site), (b"origin", origin), (b"host", host))
        if value is not None
    ]
    recorded = await run_asgi(CSRFMiddleware(app), http_scope("POST", headers=headers))
    assert recorded.status in (200, 403)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        pytest.param({"trusted_origins": ["*"]}, "anyone", id="trusting every origin"),
        pytest.param({"trusted_origins": ["null"]}, "anyone", id="trusting null"),
        pytest.param({"trusted_origins": ["https://a.example/"]}, "trusted_origins entry", id="/"),
        pytest.param({"trusted_origins": ["a.example"]}, "without a scheme", id="no scheme"),
        pytest.param({"safe_methods": ["GET POST"]}, "safe_methods", id="bad method"),
        pytest.param({"non_browser": "maybe"}, "non_browser", id="unknown policy"),
        pytest.param({"header_name": "x csrf"}, "header_name", id="bad header name"),
        pytest.param({"form_field": ""}, "form_field", id="empty form field"),
        pytest.param({"max_body_size": -1}, "max_body_size", id="negative size"),
        pytest.param({"max_body_size": 1.5}, "max_body_size", id="fractional size"),
        pytest.param({"require_token": True}, "secret", id="tokens without a secret (trap 30)"),
        pytest.param({"non_browser": "token"}, "secret", id="token policy without a secret"),
        pytest.param({"exclude_paths": ["webhooks"]}, "start", id="relative exempt path"),
    ],
)
def test_bad_configuration_names_the_argument(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        CSRFMiddleware(app, **kwargs)


@pytest.mark.parametrize(
    "kwargs",
    [
        pytest.param({"trusted_origins": "https://a.example"}, id="origins as a string"),
        pytest.param({"safe_methods": "GET"}, id="methods as a string"),
        pytest.param({"trusted_origins": [b"https://a.example"]}, id="origin as bytes"),
    ],
)
def test_lists_given_as_strings_are_type_errors(kwargs: dict[str, Any]) -> None:
    with pytest.raises(TypeError):
        CSRFMiddleware(app, **kwargs)


@pytest.mark.parametrize(
    "secret",
    [
        pytest.param("change-me", id="a short word"),
        pytest.param(["a-csrf-secret-of-at-least-32-bytes", "old"], id="a short old key in a ring"),
    ],
)
def test_a_short_secret_warns_as_the_session_secret_does(secret: Any) -> None:
    with pytest.warns(UserWarning, match="secret has a key shorter than 32 bytes"):
        CSRFMiddleware(app, secret=secret, require_token=True)


def test_a_32_byte_secret_draws_no_warning() -> None:
    CSRFMiddleware(app, secret="a-csrf-secret-of-at-least-32-bytes", require_token=True)
