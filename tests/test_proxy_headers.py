"""ProxyHeadersMiddleware: uvicorn's results where they are safe, and traps T1-T20."""

from __future__ import annotations

import threading
from typing import Any

import anyio
import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from middlewares import ProxyHeadersMiddleware
from middlewares._core.proxies import parse_address
from middlewares._types import Receive, Scope, Send
from middlewares.proxy_headers import ORIGINAL_KEY
from middlewares.testing import http_scope, run_asgi, websocket_scope

pytestmark = pytest.mark.anyio

PEER = ("10.0.0.5", 4000)


def recorder() -> tuple[list[Scope], Any]:
    seen: list[Scope] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope)
        if scope["type"] == "websocket":
            await receive()
            await send({"type": "websocket.close", "code": 1000})
            return
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    return seen, app


async def through(
    headers: list[tuple[str, str]],
    *,
    client: tuple[str, int] | None = PEER,
    scope_type: str = "http",
    scheme: str | None = None,
    **options: Any,
) -> Scope:
    seen, app = recorder()
    options.setdefault("trusted_hosts", ["10.0.0.0/8"])
    middleware = ProxyHeadersMiddleware(app, **options)
    if scope_type == "websocket":
        scope = websocket_scope(headers=headers, client=client, scheme=scheme or "ws")
    else:
        scope = http_scope(headers=headers, client=client, scheme=scheme or "http")
    await run_asgi(middleware, scope)
    return seen[0]


# --- uvicorn's own tests (tests/middleware/test_proxy_headers.py), adapted ----------------------


async def uvicorn_echo(scope: Scope, receive: Receive, send: Send) -> None:
    body = f"{scope['scheme']}://{scope['client'][0]}:{scope['client'][1]}".encode()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})


@pytest.mark.parametrize(
    ("trusted_hosts", "expected"),
    [
        pytest.param("127.0.0.1", "https://1.2.3.4:0", id="trusted proxy"),
        pytest.param(["127.0.0.1"], "https://1.2.3.4:0", id="trusted proxy as a list"),
        pytest.param(["127.0.0.1", "10.0.0.1"], "https://1.2.3.4:0", id="trusted list"),
        pytest.param("127.0.0.1, 10.0.0.1", "https://1.2.3.4:0", id="trusted comma string"),
        pytest.param("192.168.0.1", "http://127.0.0.1:123", id="untrusted proxy"),
        pytest.param("192.168.0.0/16", "http://127.0.0.1:123", id="untrusted CIDR"),
        pytest.param("127.0.0.0/8", "https://1.2.3.4:0", id="trusted CIDR"),
        pytest.param("::1", "http://127.0.0.1:123", id="untrusted IPv6"),
        pytest.param([], "http://127.0.0.1:123", id="nobody trusted"),
    ],
)
async def test_uvicorn_trusted_hosts(trusted_hosts: Any, expected: str) -> None:
    app = ProxyHeadersMiddleware(uvicorn_echo, trusted_hosts=trusted_hosts)
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 123))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        headers = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "1.2.3.4"}
        response = await client.get("/", headers=headers)
    assert response.text == expected


@pytest.mark.parametrize(
    ("forwarded_for", "expected"),
    [
        pytest.param("1.2.3.4:1024", "1.2.3.4:1024", id="IPv4 with port"),
        pytest.param("[2001:db8::1]:8080", "2001:db8::1:8080", id="IPv6 with port"),
        pytest.param("2001:db8::1", "2001:db8::1:0", id="bare IPv6"),
        pytest.param("1.2.3.4", "1.2.3.4:0", id="no port"),
    ],
)
async def test_uvicorn_keeps_the_client_port(forwarded_for: str, expected: str) -> None:
    scope = await through([("x-forwarded-for", forwarded_for)], trusted_hosts="10.0.0.5")
    assert f"{scope['client'][0]}:{scope['client'][1]}" == expected


@pytest.mark.parametrize(
    ("proto", "scope_type", "expected"),
    [
        pytest.param("https", "http", "https", id="http scope, https"),
        pytest.param("http", "http", "http", id="http scope, http"),
        pytest.param("https", "websocket", "wss", id="websocket scope, https"),
        pytest.param("http", "websocket", "ws", id="websocket scope, http"),
        pytest.param("wss", "websocket", "wss", id="websocket scope, wss"),
    ],
)
async def test_uvicorn_scheme_per_scope_type(proto: str, scope_type: str, expected: str) -> None:
    scope = await through([("x-forwarded-proto", proto)], scope_type=scope_type)
    assert scope["scheme"] == expected


async def test_uvicorn_default_trusts_localhost_only() -> None:
    seen, app = recorder()
    middleware = ProxyHeadersMiddleware(app)
    headers = [("x-forwarded-for", "1.2.3.4")]
    await run_asgi(middleware, http_scope(headers=headers, client=("127.0.0.1", 1)))
    await run_asgi(middleware, http_scope(headers=headers, client=("10.0.0.1", 1)))
    assert [s["client"][0] for s in seen] == ["1.2.3.4", "10.0.0.1"]


# --- Traps ---------------------------------------------------------------------------------------


async def test_t1_star_takes_the_proxys_hop_not_the_clients_leftmost() -> None:
    with pytest.warns(UserWarning, match="trusts every peer"):
        scope = await through([("x-forwarded-for", "1.2.3.4, 9.9.9.9")], trusted_hosts="*")
    assert scope["client"] == ("9.9.9.9", 0)
    trusted = await through([("x-forwarded-for", "1.2.3.4, 9.9.9.9")])
    assert trusted["client"] == ("9.9.9.9", 0)


@pytest.mark.parametrize(
    ("chain", "trusted", "client"),
    [
        pytest.param("1.1.1.1", ["10.0.0.0/8"], "1.1.1.1", id="one proxy"),
        pytest.param("6.6.6.6, 1.1.1.1", ["10.0.0.0/8"], "1.1.1.1", id="spoofed left"),
        pytest.param("1.1.1.1, 10.0.0.2", ["10.0.0.0/8"], "1.1.1.1", id="two proxies"),
        pytest.param("1.1.1.1, 10.0.0.2", ["10.0.0.5"], "10.0.0.2", id="inner proxy untrusted"),
        pytest.param("1.1.1.1, 2.2.2.2, 10.0.0.2", ["10.0.0.0/8"], "2.2.2.2", id="rightmost"),
    ],
)
async def test_t2_the_rightmost_untrusted_hop_is_the_client(
    chain: str, trusted: list[str], client: str
) -> None:
    scope = await through([("x-forwarded-for", chain)], trusted_hosts=trusted)
    assert scope["client"][0] == client


async def test_t3_client_on_the_proxy_host_is_the_leftmost_never_none() -> None:
    scope = await through(
        [("x-forwarded-for", "127.0.0.1")], client=("127.0.0.1", 1), trusted_hosts=["127.0.0.1"]
    )
    assert scope["client"] == ("127.0.0.1", 0)


async def test_t4_empty_x_forwarded_for_keeps_the_peer() -> None:
    scope = await through([("x-forwarded-for", "")])
    assert scope["client"] == PEER
    assert ORIGINAL_KEY not in scope


async def test_t5_several_lines_are_one_list_and_the_proxys_proto_wins() -> None:
    joined = await through([("x-forwarded-for", "1.1.1.1, 10.0.0.2")])
    lines = await through([("x-forwarded-for", "1.1.1.1"), ("x-forwarded-for", "10.0.0.2")])
    assert joined["client"] == lines["client"] == ("1.1.1.1", 0)
    # The client's own line comes first; the trusted proxy's line, last, is the one believed.
    proto = await through(
        [("x-forwarded-proto", "https"), ("x-forwarded-proto", "http")],
    )
    assert proto["scheme"] == "http"


async def test_t6_list_valued_proto_is_read_at_the_clients_hop() -> None:
    scope = await through(
        [("x-forwarded-for", "1.1.1.1, 10.0.0.2"), ("x-forwarded-proto", "https, http")]
    )
    assert scope["scheme"] == "https"


@pytest.mark.parametrize(
    ("proto", "expected"),
    [
        pytest.param("HTTPS", "https", id="upper case is lowered"),
        pytest.param(" https ", "https", id="spaces"),
        pytest.param("javascript", "http", id="not a scheme: ignored"),
        pytest.param("ftp", "http", id="not an ASGI scheme: ignored"),
        pytest.param("", "http", id="empty"),
    ],
)
async def test_t7_proto_case_and_garbage(proto: str, expected: str) -> None:
    scope = await through([("x-forwarded-proto", proto)])
    assert scope["scheme"] == expected


async def test_t8_websocket_gets_wss_and_http_never_gets_wss() -> None:
    ws = await through([("x-forwarded-proto", "https")], scope_type="websocket")
    http = await through([("x-forwarded-proto", "wss")])
    assert ws["scheme"] == "wss"
    assert http["scheme"] == "https"


async def test_t9_unix_socket_peers_need_the_opt_in() -> None:
    seen, app = recorder()
    headers = [("x-forwarded-for", "1.2.3.4")]
    socket = ("/run/app.sock", None)
    for opt_in in (False, True):
        middleware = ProxyHeadersMiddleware(app, trust_unix_socket=opt_in)
        await run_asgi(middleware, http_scope(headers=headers, client=None, server=socket))
    assert [s["client"] for s in seen] == [None, ("1.2.3.4", 0)]


@pytest.mark.parametrize(
    ("trusted_hosts", "error"),
    [
        pytest.param("10.0.0.0/33", ValueError, id="bad prefix length"),
        pytest.param(["10.0.0.0/33"], ValueError, id="bad prefix length in a list"),
        pytest.param(["unix:///tmp/socket"], ValueError, id="a literal, not an address"),
        pytest.param(["proxy.internal"], ValueError, id="a host name"),
        pytest.param(42, TypeError, id="not a list"),
    ],
)
def test_t10_malformed_trusted_hosts_raise(trusted_hosts: Any, error: type[Exception]) -> None:
    with pytest.raises(error, match="trusted_hosts"):
        ProxyHeadersMiddleware(recorder()[1], trusted_hosts=trusted_hosts)


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("<script>alert(1)</script>", id="markup"),
        pytest.param("unknown", id="unknown"),
        pytest.param("example.com", id="a name"),
        pytest.param("1.2.3.4\r\nx-evil: 1", id="CR LF"),
        pytest.param("\u00e9\u00e9", id="non-ASCII"),
        pytest.param("1.2.3.4, " * 8000 + "garbage", id="64 KiB ending in garbage"),
    ],
)
async def test_t11_a_non_address_never_becomes_the_client(value: str) -> None:
    seen, app = recorder()
    middleware = ProxyHeadersMiddleware(app, trusted_hosts=["10.0.0.0/8"])
    raw = [(b"x-forwarded-for", value.encode("utf-8"))]
    await run_asgi(middleware, http_scope(headers=raw, client=PEER))
    assert seen[0]["client"] == PEER


@given(st.lists(st.binary(max_size=40), max_size=5), st.binary(max_size=20))
def test_t11_arbitrary_forwarding_bytes_give_an_address_or_the_peer(
    chain: list[bytes], proto: bytes
) -> None:
    seen, app = recorder()
    middleware = ProxyHeadersMiddleware(app, trusted_hosts=["10.0.0.0/8", "1.0.0.0/8"])
    headers = [(b"x-forwarded-for", hop) for hop in chain] + [(b"x-forwarded-proto", proto)]
    scope = http_scope(client=PEER)
    scope["headers"] = headers
    anyio.run(run_asgi, middleware, scope)
    client = seen[0]["client"]
    assert client == PEER or parse_address(client[0]) is not None
    assert seen[0]["scheme"] in ("http", "https")


async def test_t12_forwarded_host_rewrites_host_and_server() -> None:
    scope = await through(
        [
            ("host", "10.0.0.9:8000"),
            ("x-forwarded-host", "App.Example.com"),
            ("x-forwarded-proto", "https"),
        ],
        x_host=1,
    )
    assert dict(scope["headers"])[b"host"] == b"app.example.com"
    assert scope["server"] == ("app.example.com", 443)
    assert scope[ORIGINAL_KEY]["headers"] == [
        (b"host", b"10.0.0.9:8000"),
        (b"x-forwarded-host", b"App.Example.com"),
        (b"x-forwarded-proto", b"https"),
    ]


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("evil.com/path?x", id="a path and query"),
        pytest.param("a b", id="a space"),
        pytest.param("", id="empty"),
        pytest.param("x" * 65536, id="64 KiB"),
    ],
)
async def test_t12_a_malformed_forwarded_host_is_ignored(value: str) -> None:
    scope = await through([("host", "internal"), ("x-forwarded-host", value)], x_host=1)
    assert [v for k, v in scope["headers"] if k == b"host"] == [b"internal"]
    assert scope["server"] == ("testserver", 80)


async def test_t12_forwarded_host_is_off_by_default() -> None:
    scope = await through([("host", "internal"), ("x-forwarded-host", "app.example.com")])
    assert dict(scope["headers"])[b"host"] == b"internal"


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        pytest.param("for=1.2.3.4; proto=https", ("1.2.3.4", "https"), id="space after ;"),
        pytest.param("For=1.2.3.4;PROTO=https", ("1.2.3.4", "https"), id="upper-case names"),
        pytest.param('for="[2001:db8::1]:4711"', ("2001:db8::1", "http"), id="quoted IPv6"),
        pytest.param(
            'for=1.2.3.4;host="a,b", for=10.0.0.2', ("1.2.3.4", "http"), id="comma in quotes"
        ),
    ],
)
async def test_t13_forwarded_is_parsed_like_rfc_7239(
    header: str, expected: tuple[str, str]
) -> None:
    scope = await through([("forwarded", header)], forwarded=True)
    assert (scope["client"][0], scope["scheme"]) == expected


async def test_t13_forwarded_mode_never_reads_x_forwarded() -> None:
    scope = await through(
        [("x-forwarded-for", "1.2.3.4"), ("x-forwarded-proto", "https")], forwarded=True
    )
    assert scope["client"] == PEER
    assert scope["scheme"] == "http"


async def test_t14_a_scope_with_a_lock_in_state_is_not_copied() -> None:
    seen, app = recorder()
    middleware = ProxyHeadersMiddleware(app, trusted_hosts=["10.0.0.0/8"])
    scope = http_scope(headers=[("x-forwarded-for", "1.2.3.4")], client=PEER)
    scope["state"] = {"pool": threading.Lock()}
    await run_asgi(middleware, scope)
    assert seen[0] is scope
    assert scope["client"] == ("1.2.3.4", 0)
    assert scope[ORIGINAL_KEY]["client"] == PEER


async def test_t15_an_untrusted_peer_changes_nothing() -> None:
    headers = [
        ("x-forwarded-for", "1.2.3.4"),
        ("x-forwarded-proto", "https"),
        ("x-forwarded-host", "evil.example"),
        ("x-forwarded-prefix", "/evil"),
    ]
    scope = await through(headers, client=("8.8.8.8", 1), x_host=1, x_prefix=1)
    assert scope["client"] == ("8.8.8.8", 1)
    assert scope["scheme"] == "http"
    assert dict(scope["headers"]).get(b"host") is None
    assert scope["path"] == "/"
    assert ORIGINAL_KEY not in scope


async def test_t16_prefix_sets_root_path_and_prefixes_path() -> None:
    middleware = ProxyHeadersMiddleware(recorder()[1], trusted_hosts=["10.0.0.0/8"], x_prefix=1)
    scope = http_scope("GET", "/items", headers=[("x-forwarded-prefix", "/api/")], client=PEER)
    await run_asgi(middleware, scope)
    assert (scope["root_path"], scope["path"], scope["raw_path"]) == (
        "/api",
        "/api/items",
        b"/api/items",
    )


@pytest.mark.parametrize(
    "prefix",
    [
        pytest.param("api", id="no leading slash"),
        pytest.param("//evil.example", id="double slash"),
        pytest.param("/a/../b", id="dot-dot"),
        pytest.param("/a b", id="a space"),
    ],
)
async def test_t16_bad_prefixes_are_ignored(prefix: str) -> None:
    scope = await through([("x-forwarded-prefix", prefix)], x_prefix=1)
    assert (scope["root_path"], scope["path"]) == ("", "/")


async def test_t18_no_environment_variable_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FORWARDED_ALLOW_IPS", "*")
    scope = await through(
        [("x-forwarded-for", "1.2.3.4")], client=("8.8.8.8", 1), trusted_hosts="127.0.0.1"
    )
    assert scope["client"] == ("8.8.8.8", 1)


async def test_t19_forwarded_port_sets_the_server_port_never_the_clients() -> None:
    scope = await through(
        [
            ("host", "app.example.com"),
            ("x-forwarded-for", "1.2.3.4:5555"),
            ("x-forwarded-port", "8443"),
        ],
        x_port=1,
    )
    assert scope["server"] == ("app.example.com", 8443)
    assert scope["client"] == ("1.2.3.4", 5555)
    assert dict(scope["headers"])[b"host"] == b"app.example.com:8443"


async def test_t20_a_trusted_http_on_a_tls_hop_means_http() -> None:
    scope = await through([("x-forwarded-proto", "http")], scheme="https")
    assert scope["scheme"] == "http"
    assert scope[ORIGINAL_KEY]["scheme"] == "https"


@pytest.mark.parametrize(
    ("options", "match"),
    [
        pytest.param({"x_for": 0}, "x_for", id="x_for zero"),
        pytest.param({"x_proto": -1}, "x_proto", id="negative"),
        pytest.param({"x_host": "1"}, "x_host", id="a string count"),
        pytest.param({"x_port": True}, "x_port", id="a bool count"),
        pytest.param({"forwarded": True, "x_prefix": 1}, "x_prefix", id="prefix with Forwarded"),
    ],
)
def test_bad_counts_name_the_argument(options: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        ProxyHeadersMiddleware(recorder()[1], **options)


async def test_werkzeug_counts_need_enough_values() -> None:
    counted = await through([("x-forwarded-for", "6.6.6.6, 1.1.1.1, 10.0.0.2")], x_for=2)
    too_few = await through([("x-forwarded-for", "1.1.1.1")], x_for=2)
    assert counted["client"] == ("1.1.1.1", 0)
    assert too_few["client"] == PEER


async def test_forwarded_host_with_a_websocket_and_forwarded_mode() -> None:
    scope = await through(
        [("host", "internal"), ("forwarded", "for=1.2.3.4;proto=https;host=app.example.com")],
        scope_type="websocket",
        forwarded=True,
        x_host=1,
    )
    assert scope["scheme"] == "wss"
    assert scope["server"] == ("app.example.com", 443)
    assert [v for k, v in scope["headers"] if k == b"host"] == [b"app.example.com"]


async def test_forwarded_port_alone_keeps_the_host_name() -> None:
    no_host = await through([("x-forwarded-port", "8443")], x_port=1)
    assert no_host["server"] == ("testserver", 8443)
    ipv6 = await through([("host", "[::1]:80"), ("x-forwarded-port", "8443")], x_port=1)
    assert ipv6["server"] == ("::1", 8443)
    assert dict(ipv6["headers"])[b"host"] == b"[::1]:8443"


async def test_many_repeated_fields_are_one_long_list() -> None:
    headers = [("x-forwarded-for", "10.0.0.9")] * 1000 + [("x-forwarded-for", "203.0.113.7")]
    headers += [("x-forwarded-proto", "https")] * 1000
    scope = await through(headers)
    assert scope["client"] == ("203.0.113.7", 0)
    assert scope["scheme"] == "https"


async def test_a_scope_without_raw_path_host_or_server_still_gets_what_is_known() -> None:
    middleware = ProxyHeadersMiddleware(
        recorder()[1], trusted_hosts=["10.0.0.0/8"], x_port=1, x_prefix=1
    )
    scope = http_scope(
        "GET",
        "/x",
        headers=[("x-forwarded-port", "8443"), ("x-forwarded-prefix", "/p")],
        client=PEER,
        server=None,
    )
    del scope["raw_path"]
    await run_asgi(middleware, scope)
    assert (scope["path"], scope["root_path"], scope["server"]) == ("/p/x", "/p", None)
    assert "raw_path" not in scope


async def test_a_second_instance_leaves_a_resolved_scope_as_it_is() -> None:
    seen: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append((scope["path"], scope["root_path"], scope["client"]))
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    inner = ProxyHeadersMiddleware(app, trusted_hosts=["10.0.0.1"], x_prefix=1)
    outer = ProxyHeadersMiddleware(inner, trusted_hosts=["10.0.0.1"], x_prefix=1)
    headers = {"x-forwarded-for": "1.2.3.4", "x-forwarded-prefix": "/api"}
    await run_asgi(outer, http_scope(path="/x", client=("10.0.0.1", 1), headers=headers))
    assert seen == [("/api/x", "/api", ("1.2.3.4", 0))]
