from __future__ import annotations

from email.utils import formatdate

import pytest
from hypothesis import given
from hypothesis import strategies as st

from middlewares._core.cookies import CookieOptions, http_date, is_cookie_value, parse_cookie


@pytest.mark.parametrize(
    ("values", "parsed"),
    [
        pytest.param([b"a=1; b=2"], {"a": "1", "b": "2"}, id="two pairs"),
        pytest.param([b"a=1; a=2"], {"a": "1"}, id="first duplicate wins"),
        pytest.param([b'a="quoted value"'], {"a": "quoted value"}, id="quotes removed"),
        pytest.param([b'a="'], {"a": '"'}, id="lone quote kept"),
        pytest.param([b"junk; =nameless; b=2;;"], {"b": "2"}, id="junk ignored"),
        pytest.param([b"a=1", b"b=2"], {"a": "1", "b": "2"}, id="split fields (HTTP/2)"),
        pytest.param([b"a=x=y"], {"a": "x=y"}, id="equals in value"),
        pytest.param([b"s=\xff\xfe"], {"s": "\xff\xfe"}, id="non-UTF-8 read as latin-1"),
        pytest.param([b"  sp = v  "], {"sp": "v"}, id="whitespace trimmed"),
    ],
)
def test_parse_cookie(values: list[bytes], parsed: dict[str, str]) -> None:
    assert parse_cookie(values) == parsed


@given(st.lists(st.binary(max_size=80), max_size=3))
def test_parse_cookie_never_raises(values: list[bytes]) -> None:
    for name, value in parse_cookie(values).items():
        assert name
        assert ";" not in name + value


@given(
    st.dictionaries(
        st.from_regex(r"[a-zA-Z0-9_\-]{1,10}", fullmatch=True),
        st.from_regex(r"[a-zA-Z0-9_\-.]{0,20}", fullmatch=True),
        max_size=5,
    )
)
def test_build_then_parse_round_trips(cookies: dict[str, str]) -> None:
    headers = [CookieOptions(name).header(value).split(b";")[0] for name, value in cookies.items()]
    assert parse_cookie([b"; ".join(headers)]) == cookies


def test_header_with_every_attribute() -> None:
    options = CookieOptions(
        "__Host-sid", secure=True, same_site="None", partitioned=True, httponly=True
    )
    header = options.header("abc", max_age=60, now=0)
    assert header == (
        b"__Host-sid=abc; Max-Age=60; Expires=Thu, 01 Jan 1970 00:01:00 GMT; Path=/; Secure; "
        b"HttpOnly; SameSite=None; Partitioned"
    )


def test_browser_session_cookie_has_no_expiry() -> None:
    header = CookieOptions("s", domain="example.com", httponly=False, same_site=None).header("v")
    assert header == b"s=v; Path=/; Domain=example.com"


def test_delete_keeps_path_and_domain() -> None:
    options = CookieOptions("s", path="/app", domain="example.com", same_site="strict")
    assert options.delete_header() == (
        b's=""; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0; Path=/app; Domain=example.com; '
        b"HttpOnly; SameSite=Strict"
    )


def test_value_outside_cookie_octets_is_refused() -> None:
    with pytest.raises(ValueError, match="cookie-octets"):
        CookieOptions("s").header("a b")
    assert is_cookie_value("abc.-_=")
    assert not is_cookie_value('a"b')
    assert not is_cookie_value("é")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        pytest.param({"name": "a b"}, "HTTP token", id="name not a token"),
        pytest.param(
            {"name": "s", "same_site": "none"}, "requires a secure", id="None needs Secure"
        ),
        pytest.param(
            {"name": "s", "same_site": "loose"}, "same_site must be", id="unknown SameSite"
        ),
        pytest.param({"name": "s", "partitioned": True}, "partitioned", id="CHIPS needs Secure"),
        pytest.param({"name": "__Secure-s"}, "__Secure- prefix", id="Secure prefix"),
        pytest.param(
            {"name": "__Host-s", "secure": True, "path": "/app"}, "__Host- prefix", id="Host path"
        ),
        pytest.param(
            {"name": "__Host-s", "secure": True, "domain": "a.com"},
            "__Host- prefix",
            id="Host domain",
        ),
        pytest.param({"name": "s", "path": "/a;b"}, "cookie path", id="semicolon in path"),
        pytest.param({"name": "s", "domain": ""}, "cookie domain", id="empty domain"),
    ],
)
def test_configuration_errors_name_the_rule(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        CookieOptions(**kwargs)  # type: ignore[arg-type]


@given(st.integers(min_value=0, max_value=253402300799))
def test_http_date_is_an_imf_fixdate(timestamp: int) -> None:
    assert http_date(timestamp) == formatdate(timestamp, usegmt=True).encode("ascii")


def test_bytes_values_are_checked_too() -> None:
    assert CookieOptions("s").header(b"v.1") == b"s=v.1; Path=/; HttpOnly; SameSite=Lax"
    assert is_cookie_value(b"abc")
    with pytest.raises(ValueError, match="cookie-octets"):
        CookieOptions("s").header(b"a;b")


def test_starlette_spelling_leaves_out_what_is_not_configured() -> None:
    options = CookieOptions("s", httponly=False, same_site=None, starlette_spelling=True)
    assert options.header("v") == b"s=v; path=/"
    assert options.header("v", max_age=5) == b"s=v; path=/; Max-Age=5"
    assert options.delete_header() == b"s=null; path=/; expires=Thu, 01 Jan 1970 00:00:00 GMT"
