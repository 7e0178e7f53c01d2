"""The proxy model meeting the guards and the observers: ProxyHeadersMiddleware outermost decides
the client and scheme that rate limits, CSRF checks, access logs and spans see; guards below an
access log have their refusals logged with their outcome."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from typing import Any

import anyio
import httpx
import pytest

from middlewares import (
    AccessLogMiddleware,
    BodyLimitMiddleware,
    CSRFMiddleware,
    OpenTelemetryMiddleware,
    ProxyHeadersMiddleware,
    RateLimitMiddleware,
    RequestTiming,
    TimeoutMiddleware,
    TimingMiddleware,
)
from middlewares._core.respond import send_response
from middlewares._types import ASGIApp, Receive, Scope, Send
from middlewares.access_log import record_from_timing
from middlewares.rate_limit import SCOPE_KEY
from middlewares.testing import http_scope, run_asgi

from .logs import collected
from .otel_support import Telemetry
from .servers import serve
from .test_edge_stack import client_from, forwarding_proxy

LOGGER = logging.getLogger("tests.composition.access")
LOGGER.setLevel(logging.INFO)
LOGGER.propagate = False
HOST = "app.example.com"
LOAD_BALANCER = "10.0.0.1"


async def echo(scope: Scope, receive: Receive, send: Send) -> None:
    """Reads the body, then answers with the client, the scheme and the rate-limit key."""
    while (await receive()).get("more_body", False):
        pass
    decision = scope.get(SCOPE_KEY)
    body = {
        "client": scope["client"][0],
        "scheme": scope["scheme"],
        "key": None if decision is None else decision.key,
    }
    await send_response(send, 200, body=json.dumps(body).encode(), content_type=b"application/json")


# --- Rate limits behind the proxy model, through uvicorn ----------------------------------------


@pytest.fixture(scope="module")
def limited_server() -> Iterator[str]:
    app = ProxyHeadersMiddleware(
        RateLimitMiddleware(echo, application_limits=["2/minute"]), trusted_hosts=["127.0.0.1"]
    )
    with serve(app, proxy_headers=False) as url:  # uvicorn's own proxy handling off
        yield url


def three_requests(
    client: httpx.Client, forwarded_for: Callable[[int], str] | None = None
) -> list[httpx.Response]:
    return [
        client.get(
            "/", headers={} if forwarded_for is None else {"x-forwarded-for": forwarded_for(n)}
        )
        for n in range(3)
    ]


@pytest.mark.server
def test_live_two_clients_behind_the_trusted_proxy_get_their_own_buckets_traps_1_2(
    limited_server: str,
) -> None:
    with forwarding_proxy(limited_server, "https") as proxy:
        seen = {}
        for address in ("127.0.0.2", "127.0.0.3"):
            with client_from(address, proxy) as client:
                seen[address] = three_requests(client)
    for address, responses in seen.items():
        assert [r.status_code for r in responses] == [200, 200, 429]
        assert responses[0].json() == {"client": address, "scheme": "https", "key": address}
        assert responses[2].headers["retry-after"]


@pytest.mark.server
def test_live_an_untrusted_peer_rotating_x_forwarded_for_is_refused_at_request_3_trap_1(
    limited_server: str,
) -> None:
    with client_from("127.0.0.4", limited_server) as client:
        responses = three_requests(client, lambda n: f"198.51.100.{n + 1}")
    assert [r.status_code for r in responses] == [200, 200, 429]
    assert responses[1].json()["key"] == "127.0.0.4"  # the forged header changed nothing


@pytest.mark.server
def test_live_ipv6_clients_behind_the_proxy_are_grouped_by_their_64(limited_server: str) -> None:
    with client_from("127.0.0.1", limited_server) as proxy_hop:  # the trusted proxy itself
        same_64 = three_requests(proxy_hop, lambda n: f"2001:db8:1:2::{n + 1:x}")
        next_64 = proxy_hop.get("/", headers={"x-forwarded-for": "2001:db8:1:3::1"})
    assert [r.status_code for r in same_64] == [200, 200, 429]
    assert same_64[0].json()["client"] == "2001:db8:1:2::1"
    assert same_64[0].json()["key"] == "2001:db8:1:2::/64"
    assert next_64.status_code == 200


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("forwarded_for", "key"),
    [
        pytest.param([b"not-an-ip"], LOAD_BALANCER, id="garbage: ignored, the peer's bucket"),
        pytest.param(["203.0.113.\u00e9".encode("latin-1")], LOAD_BALANCER, id="non-ASCII"),
        pytest.param([b"203.0.113.1\r\nx-admin: 1"], LOAD_BALANCER, id="CR/LF inside"),
        pytest.param([b""], LOAD_BALANCER, id="empty"),
        pytest.param([b"1.2.3.4, " * 2000 + b"5.6.7.8"], "5.6.7.8", id="huge: the nearest hop"),
        pytest.param(
            [b"203.0.113.1", b"203.0.113.2"], "203.0.113.2", id="duplicated: the last field"
        ),
        pytest.param([b"6.6.6.6, 203.0.113.8"], "203.0.113.8", id="forged left of the real hop"),
        pytest.param([b"[2001:db8::1]:443"], "2001:db8::/64", id="bracketed IPv6 with a port"),
        pytest.param([b"::ffff:203.0.113.7"], "203.0.113.7", id="IPv4-mapped IPv6 as IPv4"),
    ],
)
async def test_hostile_forwarded_for_from_the_proxy_never_breaks_the_rate_limit_key(
    forwarded_for: list[bytes], key: str
) -> None:
    app = ProxyHeadersMiddleware(
        RateLimitMiddleware(echo, application_limits=["2/minute"]), trusted_hosts=[LOAD_BALANCER]
    )
    headers = [(b"x-forwarded-for", value) for value in forwarded_for]
    recorded = await run_asgi(app, http_scope(headers=headers, client=(LOAD_BALANCER, 5000)))
    assert recorded.status == 200
    assert json.loads(recorded.body)["key"] == key


@pytest.mark.anyio
async def test_a_lan_client_without_forwarded_headers_is_keyed_by_its_own_address_trap_3() -> None:
    app = ProxyHeadersMiddleware(
        RateLimitMiddleware(echo, application_limits=["2/minute"]), trusted_hosts=[LOAD_BALANCER]
    )
    recorded = await run_asgi(app, http_scope(client=("192.168.1.20", 5000)))
    assert recorded.status == 200
    assert json.loads(recorded.body)["key"] == "192.168.1.20"


# --- CSRF behind a TLS-terminating proxy (limits.md §2, trap 20) --------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("peer", "forwarded_proto", "status"),
    [
        pytest.param(LOAD_BALANCER, "https", 200, id="trap 20: trusted https proxy passes"),
        pytest.param("203.0.113.5", "https", 403, id="trap 20: untrusted peer not upgraded"),
        pytest.param(LOAD_BALANCER, None, 403, id="trusted proxy without the header stays http"),
    ],
)
async def test_same_origin_post_behind_a_tls_proxy_trap_20(
    peer: str, forwarded_proto: str | None, status: int
) -> None:
    app = ProxyHeadersMiddleware(CSRFMiddleware(echo), trusted_hosts=[LOAD_BALANCER])
    headers = {"origin": f"https://{HOST}"}  # an older browser: no Sec-Fetch-Site
    if forwarded_proto is not None:
        headers["x-forwarded-proto"] = forwarded_proto
    transport = httpx.ASGITransport(app=app, client=(peer, 5000))
    async with httpx.AsyncClient(transport=transport, base_url=f"http://{HOST}") as client:
        response = await client.post("/transfer", headers=headers, content=b"amount=1")
    assert response.status_code == status


# --- Observers behind the proxy model -----------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("peer", "expected"),
    [
        pytest.param(LOAD_BALANCER, "203.0.113.9", id="trusted balancer: the real client"),
        pytest.param("198.51.100.7", "198.51.100.7", id="untrusted peer: its own address"),
    ],
)
async def test_access_log_and_span_record_the_resolved_client(peer: str, expected: str) -> None:
    telemetry = Telemetry()
    app = ProxyHeadersMiddleware(
        AccessLogMiddleware(
            OpenTelemetryMiddleware(
                echo,
                tracer_provider=telemetry.tracer_provider,
                meter_provider=telemetry.meter_provider,
            ),
            logger=LOGGER,
        ),
        trusted_hosts=[LOAD_BALANCER],
    )
    transport = httpx.ASGITransport(app=app, client=(peer, 5000))
    with collected(LOGGER) as records:
        async with httpx.AsyncClient(transport=transport, base_url=f"http://{HOST}") as client:
            await client.get("/", headers={"x-forwarded-for": "203.0.113.9"})
    (line,) = [json.loads(record.getMessage()) for record in records]
    (span,) = telemetry.spans
    assert line["client"] == expected
    assert span.attributes is not None
    assert span.attributes["client.address"] == expected


# --- Every guard's refusal in the access log ----------------------------------------------------


async def never_answers(scope: Scope, receive: Receive, send: Send) -> None:
    await anyio.sleep_forever()


def guarded(name: str) -> ASGIApp:
    if name == "rate limit":
        return RateLimitMiddleware(echo, application_limits=["1/minute"])
    if name == "body limit":
        return BodyLimitMiddleware(echo, max_body_size=4)
    if name == "timeout":
        return TimeoutMiddleware(never_answers, timeout=0.01)
    return CSRFMiddleware(echo)


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("guard", "request_", "status", "outcome"),
    [
        pytest.param("rate limit", {"method": "GET"}, 429, "limited", id="rate limit: limited"),
        pytest.param(
            "body limit",
            {"method": "POST", "content": b"0123456789"},
            413,
            "too_large",
            id="body limit: too_large",
        ),
        pytest.param("timeout", {"method": "GET"}, 504, "timeout", id="timeout: timeout"),
        pytest.param(
            "csrf",
            {"method": "POST", "headers": {"sec-fetch-site": "cross-site"}},
            403,
            "forbidden",
            id="csrf: forbidden",
        ),
    ],
)
async def test_a_guards_refusal_is_logged_once_with_its_outcome(
    guard: str, request_: dict[str, Any], status: int, outcome: str
) -> None:
    timings: list[RequestTiming] = []
    app = AccessLogMiddleware(
        TimingMiddleware(guarded(guard), on_timing=timings.append), logger=LOGGER
    )
    transport = httpx.ASGITransport(app=app, client=("203.0.113.9", 5000))
    with collected(LOGGER) as records:
        async with httpx.AsyncClient(transport=transport, base_url=f"http://{HOST}") as client:
            if guard == "rate limit":
                await client.request(url="/", **request_)  # uses the one allowed request
            response = await client.request(url="/", **request_)
    lines = [json.loads(record.getMessage()) for record in records]
    assert response.status_code == status
    assert [(line["status"], line["outcome"]) for line in lines][-1] == (status, outcome)
    assert sum(line["outcome"] != "ok" for line in lines) == 1
    # The timing hooks see the same outcome, and so does a log line built from them.
    assert (timings[-1].status, timings[-1].outcome) == (status, outcome)
    assert record_from_timing(timings[-1])["outcome"] == outcome
