"""The trust model: addresses, the walk from the right, RFC 7239 and X-Forwarded-* reading."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from middlewares._core.proxies import (
    ForwardedResolver,
    Forwarding,
    TrustedProxies,
    client_host,
    is_secure,
    parse_address,
    parse_forwarded,
    parse_node,
    parse_prefix,
    request_origin,
    request_scheme,
)
from middlewares.testing import http_scope, websocket_scope

TRUST = TrustedProxies(["10.0.0.0/8", "192.168.1.1", "::1"])


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("192.0.2.1", ("192.0.2.1", 0), id="IPv4"),
        pytest.param("192.0.2.1:4711", ("192.0.2.1", 4711), id="IPv4 with port"),
        pytest.param("2001:db8::1", ("2001:db8::1", 0), id="bare IPv6"),
        pytest.param("2001:DB8:0::1", ("2001:db8::1", 0), id="IPv6 made canonical"),
        pytest.param("[2001:db8::1]", ("2001:db8::1", 0), id="bracketed IPv6"),
        pytest.param("[2001:db8::1]:4711", ("2001:db8::1", 4711), id="bracketed IPv6 with port"),
        pytest.param("<script>alert(1)</script>", None, id="markup"),
        pytest.param("unknown", None, id="unknown"),
        pytest.param("example.com", None, id="a host name"),
        pytest.param("192.0.2.1:99999", None, id="port out of range"),
        pytest.param("192.0.2.1:x", None, id="port not a number"),
        pytest.param("[192.0.2.1]", None, id="bracketed IPv4"),
        pytest.param("[2001:db8::1", None, id="unclosed bracket"),
        pytest.param("[2001:db8::1]x", None, id="text after the bracket"),
        pytest.param("fe80::1%eth0", None, id="zone id"),
        pytest.param("", None, id="empty"),
        pytest.param("1" * 100, None, id="longer than any address"),
    ],
)
def test_parse_address(text: str, expected: tuple[str, int] | None) -> None:
    assert parse_address(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("192.0.2.60", ("192.0.2.60", 0), id="IPv4"),
        pytest.param("192.0.2.60:80", ("192.0.2.60", 80), id="IPv4 with port"),
        pytest.param("[2001:db8:cafe::17]:4711", ("2001:db8:cafe::17", 4711), id="IPv6 and port"),
        pytest.param("[2001:db8:cafe::17]", ("2001:db8:cafe::17", 0), id="IPv6"),
        pytest.param("192.0.2.43:_hidden", ("192.0.2.43", 0), id="obfuscated port"),
        pytest.param("unknown", None, id="unknown"),
        pytest.param("_hidden", None, id="obfuscated node"),
        pytest.param("2001:db8::1", None, id="unbracketed IPv6 is not a node"),
        pytest.param("192.0.2.60:", None, id="empty port"),
        pytest.param("[2001:db8::1]4711", None, id="no colon before the port"),
        pytest.param("192.0.2.43:_" + "x" * 100, None, id="longer than any node"),
    ],
)
def test_parse_node_rfc7239_section_6(text: str, expected: tuple[str, int] | None) -> None:
    assert parse_node(text) == expected


@given(st.text(max_size=60))
def test_address_parsers_never_raise(text: str) -> None:
    for parse in (parse_address, parse_node):
        result = parse(text)
        assert result is None or parse_address(result[0]) == (result[0], 0)


def test_configuration_errors_name_the_entry() -> None:  # T10
    with pytest.raises(ValueError, match=r"trusted_hosts .* got '10.0.0.0/33'"):
        TrustedProxies(["10.0.0.0/33"])
    with pytest.raises(ValueError, match=r"got 'proxy\.internal'"):
        TrustedProxies(["proxy.internal"])
    with pytest.raises(ValueError, match="got 42"):
        TrustedProxies([42])  # type: ignore[list-item]
    with pytest.raises(TypeError, match=r"got the string '10\.0\.0\.1'"):
        TrustedProxies("10.0.0.1")


@pytest.mark.parametrize(
    ("host", "trusted"),
    [
        pytest.param("10.1.2.3", True, id="in a network"),
        pytest.param("192.168.1.1", True, id="an address"),
        pytest.param("192.168.1.2", False, id="next to an address"),
        pytest.param("::1", True, id="IPv6 address"),
        pytest.param("0:0::1", True, id="IPv6 in another spelling"),
        pytest.param("11.0.0.1", False, id="outside"),
        pytest.param("not-an-ip", False, id="not an address"),
        pytest.param("1" * 100, False, id="too long to be an address"),
    ],
)
def test_trusts(host: str, trusted: bool) -> None:
    assert TRUST.trusts(host) is trusted


@pytest.mark.parametrize(
    ("client", "server", "unix_socket", "trusted"),
    [
        pytest.param(("10.0.0.1", 1), ("h", 80), False, True, id="trusted peer"),
        pytest.param(("8.8.8.8", 1), ("h", 80), False, False, id="untrusted peer"),
        pytest.param(None, ("/run/app.sock", None), False, False, id="unix socket, not opted in"),
        pytest.param(None, ("/run/app.sock", None), True, True, id="unix socket, opted in"),
        pytest.param(None, None, True, True, id="unix socket without server"),
        pytest.param(None, ("h", 80), True, False, id="no client over TCP is not a socket"),
    ],
)
def test_trusts_peer_and_unix_sockets(  # T9
    client: tuple[str, int] | None,
    server: tuple[str, int | None] | None,
    unix_socket: bool,
    trusted: bool,
) -> None:
    trust = TrustedProxies(["10.0.0.0/8"], unix_socket=unix_socket)
    assert trust.trusts_peer(http_scope(client=client, server=server)) is trusted


@pytest.mark.parametrize(
    ("chain", "expected"),
    [
        pytest.param("1.2.3.4", (1, ("1.2.3.4", 0)), id="one hop"),
        pytest.param("1.2.3.4, 9.9.9.9", (1, ("9.9.9.9", 0)), id="rightmost untrusted wins"),
        pytest.param("1.2.3.4, 10.0.0.2", (2, ("1.2.3.4", 0)), id="past a trusted proxy"),
        pytest.param("6.6.6.6, 1.2.3.4, 10.0.0.2, 10.0.0.3", (3, ("1.2.3.4", 0)), id="3 hops"),
        pytest.param("10.0.0.9, 10.0.0.2", (2, ("10.0.0.9", 0)), id="all trusted: leftmost"),
        pytest.param("garbage, 10.0.0.2", (2, ("10.0.0.2", 0)), id="garbage stops the walk"),
        pytest.param("1.2.3.4, garbage", (1, None), id="garbage on the right: no client"),
        pytest.param("[2001:db8::1]:80, 10.0.0.2", (2, ("2001:db8::1", 80)), id="IPv6 port"),
    ],
)
def test_walk_returns_the_first_untrusted_hop_from_the_right(  # T2
    chain: str, expected: tuple[int, tuple[str, int] | None]
) -> None:
    hops = [hop.strip() for hop in chain.split(",")]
    assert TRUST.walk(hops, parse_address) == expected


def test_star_believes_one_hop_only() -> None:  # T1
    trust = TrustedProxies(["*"])
    assert trust.trusts_peer(http_scope(client=("203.0.113.9", 1)))
    assert trust.walk(["1.2.3.4", "10.0.0.1"], parse_address) == (1, ("10.0.0.1", 0))


# RFC 7239 §4 and §7.4 examples, with what each element says.
RFC_EXAMPLES = [
    pytest.param('for="_gazonk"', [{"for": "_gazonk"}], id="obfuscated"),
    pytest.param(
        'For="[2001:db8:cafe::17]:4711"',
        [{"for": "[2001:db8:cafe::17]:4711"}],
        id="quoted IPv6, upper-case name",
    ),
    pytest.param(
        "for=192.0.2.60;proto=http;by=203.0.113.43",
        [{"for": "192.0.2.60", "proto": "http", "by": "203.0.113.43"}],
        id="three pairs",
    ),
    pytest.param(
        "for=192.0.2.43, for=198.51.100.17",
        [{"for": "192.0.2.43"}, {"for": "198.51.100.17"}],
        id="two elements",
    ),
    pytest.param(
        "for=192.0.2.43; proto=https",
        [{"for": "192.0.2.43", "proto": "https"}],
        id="space after the semicolon",
    ),
    pytest.param(
        'for=unknown;host="a,b";proto=https',
        [{"for": "unknown", "host": "a,b", "proto": "https"}],
        id="comma inside quotes",
    ),
    pytest.param('for="a\\"b"', [{"for": 'a"b'}], id="escaped quote"),
    pytest.param(
        "for=1.2.3.4, , for=5.6.7.8", [{"for": "1.2.3.4"}, {"for": "5.6.7.8"}], id="empty"
    ),
    pytest.param("for=1.2.3.4;for=5.6.7.8", [None], id="repeated parameter"),
    pytest.param("for=1.2.3.4;for=5.6.7.8;proto=http", [None], id="pairs after a repeat"),
    pytest.param("", [], id="blank"),
]


@pytest.mark.parametrize(("value", "elements"), RFC_EXAMPLES)
def test_parse_forwarded(value: str, elements: list[dict[str, str] | None]) -> None:  # T13
    assert parse_forwarded(value) == elements


@pytest.mark.parametrize(
    "value",
    [
        pytest.param('for="unterminated', id="unterminated quote"),
        pytest.param("for", id="no value"),
        pytest.param("for=a b", id="space inside a token"),
        pytest.param("for=[::1]", id="unquoted brackets"),
    ],
)
def test_malformed_forwarded_is_none(value: str) -> None:
    assert parse_forwarded(value) is None


_NAMES = st.sampled_from(["for", "by", "proto", "host", "ext"])
_VALUES = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=20)


def _serialise(elements: list[dict[str, str]]) -> str:
    def value(text: str) -> str:
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'

    return ", ".join(";".join(f"{k}={value(v)}" for k, v in e.items()) for e in elements)


@given(st.lists(st.dictionaries(_NAMES, _VALUES, min_size=1), max_size=4))
def test_forwarded_round_trips(elements: list[dict[str, str]]) -> None:
    assert parse_forwarded(_serialise(elements)) == elements


@given(st.text(max_size=200))
def test_parse_forwarded_never_raises(value: str) -> None:
    parse_forwarded(value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("/api", "/api", id="one segment"),
        pytest.param("/api/v1/", "/api/v1", id="trailing slash dropped"),
        pytest.param("api", None, id="no leading slash"),
        pytest.param("//evil.example", None, id="double slash"),
        pytest.param("/a//b", None, id="empty segment"),
        pytest.param("/a/../b", None, id="dot-dot segment"),
        pytest.param("/a%2fb", None, id="percent"),
        pytest.param("/a?b", None, id="query"),
        pytest.param("/", None, id="only a slash"),
        pytest.param("/a/.b", "/a/.b", id="a dot inside a segment"),
    ],
)
def test_parse_prefix(value: str, expected: str | None) -> None:  # T16
    assert parse_prefix(value) == expected


def resolve(headers: list[tuple[bytes, bytes]], **options: object) -> Forwarding | None:
    return ForwardedResolver(TRUST, **options).resolve(headers)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("headers", "options", "expected"),
    [
        pytest.param(
            [(b"x-forwarded-for", b"1.2.3.4, 10.0.0.2"), (b"x-forwarded-proto", b"https, http")],
            {},
            Forwarding(("1.2.3.4", 0), True),
            id="proto read at the client's hop",
        ),
        pytest.param(
            [(b"x-forwarded-for", b"1.2.3.4, 10.0.0.2"), (b"x-forwarded-proto", b"https")],
            {},
            Forwarding(("1.2.3.4", 0), True),
            id="one proto for several hops",
        ),
        pytest.param(
            [(b"x-forwarded-proto", b"javascript")], {}, None, id="unknown scheme ignored"
        ),
        pytest.param([(b"x-forwarded-for", b"")], {}, None, id="empty XFF says nothing"),
        pytest.param([(b"x-forwarded-proto", b" , ")], {}, None, id="a list of nothing"),
        pytest.param(
            [(b"x-forwarded-for", b"6.6.6.6, 1.2.3.4, 10.0.0.2")],
            {"x_for": 1},
            Forwarding(("10.0.0.2", 0)),
            id="x_for counts hops, werkzeug",
        ),
        pytest.param([(b"x-forwarded-for", b"1.2.3.4")], {"x_for": 2}, None, id="fewer than x_for"),
        pytest.param(
            [(b"x-forwarded-proto", b"https"), (b"x-forwarded-for", b"1.2.3.4")],
            {"x_proto": 0},
            Forwarding(("1.2.3.4", 0)),
            id="x_proto 0 ignores the scheme",
        ),
        pytest.param(
            [(b"x-forwarded-proto", b"http, https")],
            {"x_proto": 2},
            Forwarding(secure=False),
            id="x_proto counts",
        ),
        pytest.param(
            [(b"x-forwarded-host", b"a.example, b.example:8443")],
            {"x_host": 1},
            Forwarding(host=("b.example", 8443)),
            id="x_host rightmost",
        ),
        pytest.param([(b"x-forwarded-host", b"b.example")], {}, None, id="XFH is off by default"),
        pytest.param(
            [(b"x-forwarded-host", b"evil.com/path?x")], {"x_host": 1}, None, id="bad XFH"
        ),
        pytest.param(
            [(b"x-forwarded-port", b"8443")], {"x_port": 1}, Forwarding(port=8443), id="port"
        ),
        pytest.param([(b"x-forwarded-port", b"99999")], {"x_port": 1}, None, id="bad port"),
        pytest.param(
            [(b"x-forwarded-prefix", b"/api/")],
            {"x_prefix": 1},
            Forwarding(prefix="/api"),
            id="prefix",
        ),
        pytest.param([(b"x-forwarded-prefix", b"//evil")], {"x_prefix": 1}, None, id="bad prefix"),
    ],
)
def test_x_forwarded_resolution(
    headers: list[tuple[bytes, bytes]], options: dict[str, object], expected: Forwarding | None
) -> None:
    assert resolve(headers, **options) == expected


@pytest.mark.parametrize(
    ("value", "options", "expected"),
    [
        pytest.param(
            b"for=1.2.3.4;proto=https;host=app.example, for=10.0.0.2;proto=http",
            {"x_host": 1},
            Forwarding(("1.2.3.4", 0), True, ("app.example", None)),
            id="the client's element says everything",
        ),
        pytest.param(
            b"for=_hidden;proto=https",
            {},
            Forwarding(secure=True),
            id="obfuscated client keeps the peer, believes the proto",
        ),
        pytest.param(
            b"for=1.2.3.4;proto=https;host=app.example",
            {},
            Forwarding(("1.2.3.4", 0), True),
            id="host is opt-in",
        ),
        pytest.param(b'for="unterminated', {}, None, id="malformed is ignored whole"),
        pytest.param(b"for=1.2.3.4;for=5.6.7.8", {}, None, id="repeated parameter"),
        pytest.param(
            b"for=1.2.3.4;for=5.6.7.8, for=10.0.0.2",
            {},
            Forwarding(("10.0.0.2", 0)),
            id="an invalid element stops the walk",
        ),
        pytest.param(
            b"for=6.6.6.6, for=1.2.3.4", {"x_for": 1}, Forwarding(("1.2.3.4", 0)), id="counted"
        ),
        pytest.param(b"for=1.2.3.4", {"x_for": 2}, None, id="fewer elements than counted"),
        pytest.param(b"by=10.0.0.1", {}, None, id="no for, no proto"),
    ],
)
def test_forwarded_resolution(
    value: bytes, options: dict[str, object], expected: Forwarding | None
) -> None:
    assert resolve([(b"forwarded", value)], forwarded=True, **options) == expected


def test_forwarded_mode_never_falls_back_to_x_forwarded() -> None:  # T13
    headers = [(b"x-forwarded-for", b"1.2.3.4"), (b"x-forwarded-proto", b"https")]
    assert resolve(headers, forwarded=True) is None
    assert resolve([(b"forwarded", b"for=1.2.3.4")]) is None


def test_several_forwarded_fields_are_one_list() -> None:
    headers = [(b"forwarded", b"for=1.2.3.4"), (b"forwarded", b"for=10.0.0.2")]
    assert resolve(headers, forwarded=True) == Forwarding(("1.2.3.4", 0))


@given(
    st.lists(
        st.tuples(
            st.sampled_from(
                [
                    b"forwarded",
                    b"x-forwarded-for",
                    b"x-forwarded-proto",
                    b"x-forwarded-host",
                    b"x-forwarded-port",
                    b"x-forwarded-prefix",
                ]
            ),
            st.binary(max_size=60),
        ),
        max_size=6,
    )
)
def test_resolution_never_raises(headers: list[tuple[bytes, bytes]]) -> None:
    for forwarded in (False, True):
        result = resolve(headers, forwarded=forwarded, x_host=1, x_port=1, x_prefix=1)
        if result is not None and result.client is not None:
            assert parse_address(result.client[0]) is not None  # T11: only addresses


def test_accessors() -> None:
    scope = http_scope(headers=[("host", "Example.com.:443")], scheme="https")
    assert client_host(scope) == "127.0.0.1"
    assert request_scheme(scope) == "https"
    assert is_secure(scope)
    assert request_origin(scope) == "https://example.com"
    assert request_origin(websocket_scope(headers=[("host", "a:8080")], scheme="wss")) == (
        "https://a:8080"
    )
    assert request_origin(http_scope(headers=[("host", "a/b")])) is None
    assert request_scheme({"type": "websocket"}) == "ws"
    assert client_host(http_scope(client=None)) is None


def test_ipv4_mapped_addresses_are_one_client_with_their_ipv4_form() -> None:
    assert parse_address("::ffff:203.0.113.7") == ("203.0.113.7", 0)
    assert parse_address("[::ffff:203.0.113.7]:4711") == ("203.0.113.7", 4711)
    trust = TrustedProxies(["10.0.0.0/8", "192.0.2.1"])
    assert trust.trusts("::ffff:10.0.0.5")
    assert trust.trusts("::ffff:192.0.2.1")
    assert not trust.trusts("::ffff:203.0.113.7")
