"""CORSMiddleware configuration: origin entries parsed and validated at construction, wildcard
and regex matching, the origin predicate and its cache, and parsers that never raise."""

from __future__ import annotations

import re
import string
from typing import Any

import anyio
import anyio.lowlevel
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from middlewares._types import Receive, Scope, Send
from middlewares.cors import CORSMiddleware, compile_origin, preflight_failures, same_host
from middlewares.testing import http_scope, run_asgi

pytestmark = pytest.mark.anyio


async def ok_app(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


async def acao_for(middleware: Any, origin: str) -> str | None:
    recorded = await run_asgi(middleware, http_scope(headers={"origin": origin}))
    return recorded.header("access-control-allow-origin")


@pytest.mark.parametrize(
    ("entry", "normalised"),
    [
        pytest.param("https://example.com", "https://example.com", id="already normal"),
        pytest.param("HTTPS://Example.COM", "https://example.com", id="scheme and host lowered"),
        pytest.param("https://example.com:443", "https://example.com", id="default https port"),
        pytest.param("http://example.com:80", "http://example.com", id="default http port"),
        pytest.param("http://example.com:8080", "http://example.com:8080", id="other port kept"),
        pytest.param("https://bücher.example", "https://xn--bcher-kva.example", id="idn punycode"),
        pytest.param("http://[::1]:3000", "http://[::1]:3000", id="ipv6 literal"),
        pytest.param("null", "null", id="null literal"),
    ],
)
def test_origin_entries_are_normalised_like_browsers_send_them(entry: str, normalised: str) -> None:
    assert compile_origin(entry) == (normalised, None)


@pytest.mark.parametrize(
    ("entry", "says"),
    [
        pytest.param("example.com", "without a scheme", id="no scheme"),
        pytest.param("https://example.com/", "trailing slash", id="trailing slash"),
        pytest.param("https://example.com/app", "path", id="path"),
        pytest.param("https://example.com?x=1", "query", id="query"),
        pytest.param("https://user@example.com", "user info", id="user info"),
        pytest.param("https://*example.com", "'*'", id="star glued to a label"),
        pytest.param("https://a.*.example.com", "'*'", id="star in the middle"),
        pytest.param("https://*", "'*'", id="bare star host"),
        pytest.param("https://*.com", "top-level domain", id="wildcard over a tld"),
        pytest.param("https://example.com:8*", "'*'", id="star inside the port"),
        pytest.param("https://example.com:99999", "invalid port", id="port out of range"),
        pytest.param("https://example.com:http", "invalid port", id="port not digits"),
        pytest.param("https://exa mple.com", "invalid host", id="space in host"),
        pytest.param("1http://example.com", "invalid scheme", id="bad scheme"),
        pytest.param("http://[::1", "invalid host", id="unclosed ipv6"),
        pytest.param("http://[::1]x", "invalid IPv6", id="junk after ipv6"),
        pytest.param("https://a\u3002\u3002b", "invalid host", id="idna refuses empty labels"),
    ],
)
def test_bad_origin_entries_fail_at_construction_naming_the_entry(entry: str, says: str) -> None:
    with pytest.raises(ValueError, match=re.escape(says)) as caught:
        CORSMiddleware(ok_app, allow_origins=[entry])
    assert repr(entry) in str(caught.value)


@pytest.mark.parametrize(
    ("kwargs", "error", "says"),
    [
        pytest.param({"allow_origins": "https://a.com"}, TypeError, "allow_origins", id="str"),
        pytest.param({"allow_methods": "GET"}, TypeError, "allow_methods", id="methods str"),
        pytest.param({"allow_origins": [42]}, TypeError, "42", id="origin not a string"),
        pytest.param({"allow_methods": ["GE T"]}, ValueError, "'GE T'", id="method not token"),
        pytest.param({"allow_headers": ["x foo"]}, ValueError, "'x foo'", id="header not token"),
        pytest.param({"expose_headers": ["a:b"]}, ValueError, "'a:b'", id="expose not token"),
        pytest.param({"max_age": -1}, ValueError, "max_age", id="negative max age"),
        pytest.param({"max_age": True}, ValueError, "max_age", id="bool max age"),
        pytest.param({"predicate_cache_size": -1}, ValueError, "predicate_cache_size", id="cache"),
        pytest.param({"allow_origin_regex": "("}, ValueError, "allow_origin_regex", id="regex"),
        pytest.param({"exclude_paths": ["health"]}, ValueError, "'health'", id="path pattern"),
    ],
)
def test_bad_configuration_names_the_argument(
    kwargs: dict[str, Any], error: type[Exception], says: str
) -> None:
    with pytest.raises(error, match=re.escape(says)):
        CORSMiddleware(ok_app, **kwargs)


@pytest.mark.parametrize(
    ("origin", "allowed"),
    [
        pytest.param("https://a.example.com", True, id="one label"),
        pytest.param("https://a.b.example.com", True, id="two labels"),
        pytest.param("https://a-1.example.com", True, id="hyphen and digit"),
        pytest.param("https://example.com", False, id="apex not included"),
        pytest.param("https://xexample.com", False, id="glued prefix"),
        pytest.param("https://a.example.com.evil.io", False, id="suffix attack"),
        pytest.param("http://a.example.com", False, id="other scheme"),
        pytest.param("https://a.example.com:8443", False, id="other port"),
        pytest.param("https://.example.com", False, id="empty label"),
        pytest.param("https://a_b.example.com", True, id="underscore label"),
    ],
)
async def test_subdomain_wildcard_is_label_aware(origin: str, allowed: bool) -> None:
    middleware = CORSMiddleware(ok_app, allow_origins=["https://*.example.com"])
    assert (await acao_for(middleware, origin) == origin) is allowed


@pytest.mark.parametrize(
    ("origin", "allowed"),
    [
        pytest.param("http://localhost:3000", True, id="numeric port"),
        pytest.param("http://localhost:65535", True, id="high port"),
        pytest.param("http://localhost", True, id="default port"),
        pytest.param("http://localhost:abc", False, id="letters"),
        pytest.param("http://localhost:3000.evil.io", False, id="port then domain"),
        pytest.param("http://localhostx:3000", False, id="other host"),
        pytest.param("https://localhost:3000", False, id="other scheme"),
    ],
)
async def test_any_port_wildcard_takes_digits_only(origin: str, allowed: bool) -> None:
    middleware = CORSMiddleware(ok_app, allow_origins=["http://localhost:*"])
    assert (await acao_for(middleware, origin) == origin) is allowed


async def test_wildcard_subdomain_and_port_combine() -> None:
    middleware = CORSMiddleware(ok_app, allow_origins=["http://*.localhost:*"])
    assert await acao_for(middleware, "http://app.localhost:5173") == "http://app.localhost:5173"
    assert await acao_for(middleware, "http://localhost:5173") is None


async def test_wildcard_subdomain_with_a_fixed_port() -> None:
    middleware = CORSMiddleware(ok_app, allow_origins=["https://*.example.com:8443"])
    assert await acao_for(middleware, "https://a.example.com:8443") == "https://a.example.com:8443"
    assert await acao_for(middleware, "https://a.example.com") is None


async def test_apex_is_allowed_only_when_listed_beside_the_wildcard() -> None:
    middleware = CORSMiddleware(
        ok_app, allow_origins=["https://*.example.com", "https://example.com"]
    )
    assert await acao_for(middleware, "https://example.com") == "https://example.com"


async def test_normalised_entry_matches_what_the_browser_sends() -> None:
    middleware = CORSMiddleware(ok_app, allow_origins=["HTTPS://App.Example.com:443"])
    assert await acao_for(middleware, "https://app.example.com") == "https://app.example.com"


@pytest.mark.parametrize(
    "regex", [r"https://.*\.example\.com", re.compile(r"https://.*\.example\.com")]
)
async def test_origin_regex_must_match_the_whole_origin(regex: str | re.Pattern[str]) -> None:
    middleware = CORSMiddleware(ok_app, allow_origin_regex=regex)
    assert await acao_for(middleware, "https://a.example.com") == "https://a.example.com"
    assert await acao_for(middleware, "https://evil.example.com.attacker.io") is None


async def test_sync_predicate_allows_origins_and_is_cached() -> None:
    asked: list[str] = []

    def from_database(origin: str) -> bool:
        asked.append(origin)
        return origin.endswith(".customer.test")

    middleware = CORSMiddleware(ok_app, allow_origin_predicate=from_database)
    assert await acao_for(middleware, "https://shop.customer.test") == "https://shop.customer.test"
    assert await acao_for(middleware, "https://shop.customer.test") == "https://shop.customer.test"
    assert await acao_for(middleware, "https://evil.test") is None
    assert await acao_for(middleware, "https://evil.test") is None
    assert asked == ["https://shop.customer.test", "https://evil.test"]


async def test_async_predicate_is_awaited() -> None:
    async def from_database(origin: str) -> bool:
        await anyio.lowlevel.checkpoint()
        return origin == "https://tenant.test"

    middleware = CORSMiddleware(ok_app, allow_origin_predicate=from_database)
    assert await acao_for(middleware, "https://tenant.test") == "https://tenant.test"
    assert await acao_for(middleware, "https://other.test") is None


async def test_predicate_cache_is_bounded_and_drops_the_least_recently_used() -> None:
    asked: list[str] = []

    def record(origin: str) -> bool:
        asked.append(origin)
        return True

    middleware = CORSMiddleware(ok_app, allow_origin_predicate=record, predicate_cache_size=2)
    for origin in ["https://a.test", "https://b.test", "https://a.test", "https://c.test"]:
        await acao_for(middleware, origin)
    await acao_for(middleware, "https://a.test")  # kept: used more recently than b
    await acao_for(middleware, "https://b.test")  # dropped when c came in
    assert asked == ["https://a.test", "https://b.test", "https://c.test", "https://b.test"]


async def test_predicate_cache_size_zero_asks_every_time() -> None:
    asked: list[str] = []

    def record(origin: str) -> bool:
        asked.append(origin)
        return False

    middleware = CORSMiddleware(ok_app, allow_origin_predicate=record, predicate_cache_size=0)
    await acao_for(middleware, "https://a.test")
    await acao_for(middleware, "https://a.test")
    assert asked == ["https://a.test", "https://a.test"]


async def test_listed_origins_never_reach_the_predicate() -> None:
    def never(origin: str) -> bool:
        raise AssertionError(f"predicate asked about {origin}")

    middleware = CORSMiddleware(
        ok_app, allow_origins=["https://a.test"], allow_origin_predicate=never
    )
    assert await acao_for(middleware, "https://a.test") == "https://a.test"


def test_preflight_failures_name_every_refusal_in_starlettes_order() -> None:
    failures = preflight_failures(
        b"DELETE",
        [b"x-secret"],
        True,
        origin_allowed=False,
        methods=frozenset({b"GET"}),
        headers=frozenset({b"accept"}),
        allow_private_network=False,
    )
    assert failures == ["origin", "method", "headers", "private-network"]


@pytest.mark.parametrize(
    ("origin", "host", "same"),
    [
        pytest.param(b"https://app.test", b"app.test", True, id="same host"),
        pytest.param(b"https://app.test", b"App.Test", True, id="host case"),
        pytest.param(b"https://app.test", b"app.test:443", True, id="explicit default port"),
        pytest.param(b"http://app.test:8000", b"app.test:8000", True, id="port"),
        pytest.param(b"https://evil.test", b"app.test", False, id="other host"),
        pytest.param(b"https://app.test", None, False, id="no host header"),
        pytest.param(b"null", b"app.test", False, id="null origin"),
        pytest.param(b"foo://app.test", b"app.test:80", False, id="unknown scheme"),
    ],
)
def test_same_host(origin: bytes, host: bytes | None, same: bool) -> None:
    assert same_host(origin, host) is same


_ORIGIN_TEXT = st.text(string.printable + "*é[]", max_size=40)


@given(entry=_ORIGIN_TEXT)
def test_any_origin_entry_is_accepted_or_refused_with_a_value_error(entry: str) -> None:
    try:
        exact, source = compile_origin(entry)
    except ValueError:
        return
    assert (exact is None) != (source is None)


_LABELS = st.lists(
    st.text("abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=8), min_size=1, max_size=3
)


@given(
    scheme=st.sampled_from(["http", "https"]),
    labels=_LABELS,
    port=st.one_of(st.none(), st.integers(1, 65535)),
)
def test_browser_serialised_origins_round_trip(
    scheme: str, labels: list[str], port: int | None
) -> None:
    host = ".".join([*labels, "test"])
    default = {"http": 80, "https": 443}[scheme]
    serialised = f"{scheme}://{host}" + ("" if port in (None, default) else f":{port}")
    written = f"{scheme.upper()}://{host.upper()}" + ("" if port is None else f":{port}")
    assert compile_origin(written) == (serialised, None)


@given(labels=_LABELS, noise=st.text(max_size=5))
def test_wildcard_matches_subdomains_and_nothing_glued(labels: list[str], noise: str) -> None:
    _, source = compile_origin("https://*.example.com")
    assert source is not None
    pattern = re.compile(source)
    assert pattern.fullmatch("https://" + ".".join(labels) + ".example.com")
    assert not pattern.fullmatch("https://" + "".join(labels) + "example.com")
    if noise:
        assert not pattern.fullmatch("https://a.example.com" + noise)


_HEADER_BYTES = st.binary(max_size=60)


@settings(max_examples=60, deadline=None)
@given(origin=_HEADER_BYTES, requested=_HEADER_BYTES, method=_HEADER_BYTES)
def test_arbitrary_origin_and_request_headers_never_raise(
    origin: bytes, requested: bytes, method: bytes
) -> None:
    middleware = CORSMiddleware(
        ok_app,
        allow_origins=["https://a.test", "https://*.b.test"],
        allow_origin_regex=r"https://c\d\.test",
        allow_headers=["x-a"],
    )

    async def both() -> None:
        for scope in (
            http_scope(headers=[(b"origin", origin)]),
            http_scope(
                "OPTIONS",
                headers=[
                    (b"origin", origin),
                    (b"access-control-request-method", method),
                    (b"access-control-request-headers", requested),
                ],
            ),
        ):
            recorded = await run_asgi(middleware, scope)
            assert recorded.status in (200, 400)
            assert "Origin" in recorded.header("vary").split(", ")

    anyio.run(both)
