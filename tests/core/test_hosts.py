from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from middlewares._core.hosts import (
    HostAllowList,
    format_host,
    host_field,
    normalise_entry,
    parse_host,
)
from middlewares.testing import http_scope


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param(b"example.com", ("example.com", None), id="plain name"),
        pytest.param(b"EXAMPLE.com", ("example.com", None), id="upper case is lowered"),
        pytest.param(b"example.com.", ("example.com", None), id="trailing dot dropped"),
        pytest.param(b"example.com.:8080", ("example.com", 8080), id="trailing dot and port"),
        pytest.param(b"example.com:0080", ("example.com", 80), id="leading zeros in the port"),
        pytest.param(b"127.0.0.1:8000", ("127.0.0.1", 8000), id="IPv4 and port"),
        pytest.param(b"[::1]", ("[::1]", None), id="IPv6 literal"),
        pytest.param(b"[0:0::1]:8000", ("[::1]", 8000), id="IPv6 literal made canonical"),
        pytest.param(b"xn--bcher-kva.example", ("xn--bcher-kva.example", None), id="punycode"),
        pytest.param(b"", None, id="empty"),
        pytest.param(b"a/b", None, id="a path"),
        pytest.param(b"a?b", None, id="a query"),
        pytest.param(b"a#b", None, id="a fragment"),
        pytest.param(b"user@a", None, id="userinfo"),
        pytest.param(b"a..b", None, id="empty label"),
        pytest.param(b"..example.com", None, id="leading empty label"),
        pytest.param(b"a:", None, id="empty port"),
        pytest.param(b"a:99999", None, id="port out of range"),
        pytest.param(b"a:80:80", None, id="two ports"),
        pytest.param(b"::1", None, id="unbracketed IPv6"),
        pytest.param(b"[::1]evil", None, id="text after the IPv6 literal"),
        pytest.param(b"[::1]]x", None, id="two closing brackets"),
        pytest.param(b"[not:an:ip]", None, id="bracketed garbage"),
        pytest.param(b"[1:2]", None, id="bracketed, not an IPv6 address"),
        pytest.param("b\u00fccher.example".encode(), None, id="raw UTF-8"),
        pytest.param(b"a\r\nb", None, id="CR LF"),
        pytest.param(b"a" * 400, None, id="longer than any host"),
    ],
)
def test_parse_host(raw: bytes, expected: tuple[str, int | None] | None) -> None:
    assert parse_host(raw) == expected


@given(st.binary(max_size=80))
def test_parse_host_never_raises(raw: bytes) -> None:
    result = parse_host(raw)
    if result is not None:
        name, port = result
        assert name == name.lower()
        assert not name.endswith(".")
        assert port is None or 0 <= port <= 65535


@given(
    st.from_regex(r"[a-z0-9-]{1,10}(\.[a-z0-9-]{1,10}){0,3}", fullmatch=True), st.integers(0, 65535)
)
def test_format_round_trips(name: str, port: int) -> None:
    assert parse_host(format_host((name, port)).encode()) == (name, port)
    assert format_host((name, port), default_port=port) == name


def test_one_host_field_or_none() -> None:
    assert host_field(http_scope(headers=[("host", "a")])) == b"a"
    assert host_field(http_scope()) is None
    assert host_field(http_scope(headers=[("host", "a"), ("host", "a")])) is None


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        pytest.param("Example.COM", ("example.com", None), id="case"),
        pytest.param("example.com.", ("example.com", None), id="trailing dot"),
        pytest.param("localhost:8000", ("localhost", 8000), id="with a port"),
        pytest.param("::1", ("[::1]", None), id="bare IPv6"),
        pytest.param("[::1]:8000", ("[::1]", 8000), id="bracketed IPv6 and port"),
        pytest.param("b\u00fccher.example", ("xn--bcher-kva.example", None), id="IDNA"),
        pytest.param("b\u00fccher.example:8080", ("xn--bcher-kva.example", 8080), id="IDNA, port"),
    ],
)
def test_configured_hosts_normalise_like_requests(
    entry: str, expected: tuple[str, int | None]
) -> None:
    assert normalise_entry(entry, "allowed_hosts") == expected


@pytest.mark.parametrize(
    "entry",
    [
        pytest.param("a/b", id="a path"),
        pytest.param("exa mple.com", id="a space"),
        pytest.param("\u00fc" * 70, id="IDNA label too long"),
        pytest.param("http://example.com", id="a URL"),
    ],
)
def test_bad_entries_name_the_argument(entry: str) -> None:
    with pytest.raises(ValueError, match=r"allowed_hosts entries .* got"):
        normalise_entry(entry, "allowed_hosts")


def test_non_string_entry_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="allowed_hosts entries must be strings"):
        HostAllowList([b"example.com"])  # type: ignore[list-item]


ALLOWED = HostAllowList(["example.com", "*.example.org", "localhost:8000", "*.example.net:8443"])


@pytest.mark.parametrize(
    ("host", "allowed"),
    [
        pytest.param(("example.com", None), True, id="exact"),
        pytest.param(("example.com", 9999), True, id="an entry without a port allows any"),
        pytest.param(("www.example.com", None), False, id="a subdomain of an exact entry"),
        pytest.param(("a.example.org", None), True, id="wildcard subdomain"),
        pytest.param(("a.b.example.org", None), True, id="wildcard at any depth"),
        pytest.param(("example.org", None), False, id="wildcard is not the apex"),
        pytest.param(("evilexample.org", None), False, id="wildcard needs a dot boundary"),
        pytest.param(("localhost", 8000), True, id="entry port matches"),
        pytest.param(("localhost", 8001), False, id="entry port differs"),
        pytest.param(("localhost", None), False, id="entry port and the default port"),
        pytest.param(("a.example.net", 8443), True, id="wildcard with port"),
        pytest.param(("a.example.net", 443), False, id="wildcard with another port"),
    ],
)
def test_allow_list(host: tuple[str, int | None], allowed: bool) -> None:
    assert ALLOWED.allows(host) is allowed


def test_an_entry_port_matches_the_scheme_default() -> None:
    assert HostAllowList(["example.com:443"]).allows(("example.com", None), "https")


@pytest.mark.parametrize(
    ("entries", "error"),
    [
        pytest.param("example.com", TypeError, id="a string, not a list"),
        pytest.param(["ex*ample.com"], ValueError, id="star inside"),
        pytest.param(["*example.com"], ValueError, id="star without a dot"),
        pytest.param(["*.*.example.com"], ValueError, id="two stars"),
    ],
)
def test_bad_allow_lists_raise(entries: object, error: type[Exception]) -> None:
    with pytest.raises(error, match="allowed_hosts"):
        HostAllowList(entries)  # type: ignore[arg-type]
