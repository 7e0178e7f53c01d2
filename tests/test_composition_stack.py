"""The full production stack in the order docs/ordering.md gives, every HTTP layer: one normal
request carries every layer's effect, and every guard's refusal still carries the CORS and
security headers of the layers outside it and is logged exactly once."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import anyio
import httpx
import pytest

from middlewares import (
    AccessLogMiddleware,
    BlockingDetector,
    BodyLimitMiddleware,
    CompressionMiddleware,
    CORSMiddleware,
    CSRFMiddleware,
    HTTPSRedirectMiddleware,
    OffloadMiddleware,
    OpenTelemetryMiddleware,
    ProxyHeadersMiddleware,
    RateLimitMiddleware,
    RequestDecompressionMiddleware,
    RequestIDMiddleware,
    SecurityHeadersMiddleware,
    SessionMiddleware,
    TimeoutMiddleware,
    TimingMiddleware,
    TrustedHostMiddleware,
)
from middlewares._core.proxies import client_host
from middlewares._core.respond import send_response
from middlewares._types import ASGIApp, Receive, Scope, Send
from middlewares.compose import Layer, compose
from middlewares.offload import Pool

from .logs import collected
from .otel_support import Telemetry

pytestmark = pytest.mark.anyio

LOGGER = logging.getLogger("tests.composition.stack")
LOGGER.setLevel(logging.INFO)
LOGGER.propagate = False
HOST = "app.example.com"
ORIGIN = "https://web.example.com"
BALANCER = "10.0.0.1"
CLIENT = "203.0.113.9"
# The browser's request, as the TLS-terminating balancer forwards it.
BROWSER = {
    "host": HOST,
    "origin": ORIGIN,
    "accept-encoding": "gzip",
    "x-forwarded-for": CLIENT,
    "x-forwarded-proto": "https",
}


async def endpoint(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["path"] == "/slow":
        await anyio.sleep_forever()
    while (await receive()).get("more_body", False):
        pass
    scope["session"]["visits"] = scope["session"].get("visits", 0) + 1
    body = json.dumps({"client": client_host(scope), "padding": "x" * 2000}).encode()
    await send_response(send, 200, body=body, content_type=b"application/json")


def production_stack(telemetry: Telemetry, pool: Pool) -> ASGIApp:
    return compose(
        endpoint,
        Layer(ProxyHeadersMiddleware, trusted_hosts=[BALANCER]),
        Layer(AccessLogMiddleware, logger=LOGGER),
        Layer(
            OpenTelemetryMiddleware,
            tracer_provider=telemetry.tracer_provider,
            meter_provider=telemetry.meter_provider,
        ),
        Layer(RequestIDMiddleware),
        Layer(TimingMiddleware),
        Layer(SecurityHeadersMiddleware),
        Layer(TrustedHostMiddleware, allowed_hosts=[HOST]),
        Layer(HTTPSRedirectMiddleware),
        Layer(CORSMiddleware, allow_origins=[ORIGIN], allow_credentials=True),
        Layer(RateLimitMiddleware, application_limits=["2/minute"]),
        Layer(TimeoutMiddleware, timeout=None, path_timeouts={"/slow": 0.05}),
        Layer(CompressionMiddleware),
        Layer(RequestDecompressionMiddleware),
        Layer(BodyLimitMiddleware, max_body_size=1024),
        Layer(
            SessionMiddleware, secret_key="a-session-secret-of-at-least-32-bytes", https_only="auto"
        ),
        Layer(CSRFMiddleware),
        Layer(BlockingDetector, enabled=True, threshold=30),
        Layer(OffloadMiddleware, pool=pool, paths=["/"]),
    )


@dataclass
class Stack:
    client: httpx.AsyncClient
    telemetry: Telemetry
    lines: list[logging.LogRecord]

    def logged(self) -> list[dict[str, Any]]:
        return [json.loads(record.getMessage()) for record in self.lines]


@pytest.fixture
def pool() -> Iterator[Pool]:
    pool = Pool("composition-stack", max_workers=2)
    yield pool
    pool.shutdown()


@pytest.fixture
async def stack(pool: Pool) -> AsyncIterator[Stack]:
    telemetry = Telemetry()
    app = production_stack(telemetry, pool)
    transport = httpx.ASGITransport(app=app, client=(BALANCER, 40000))
    with collected(LOGGER) as lines:
        async with httpx.AsyncClient(transport=transport, base_url=f"http://{HOST}") as client:
            yield Stack(client, telemetry, lines)


async def test_one_request_carries_every_layers_effect(stack: Stack) -> None:
    response = await stack.client.get("/", headers=BROWSER)
    assert response.status_code == 200
    assert response.json()["client"] == CLIENT  # the app sees the real client
    headers = response.headers
    assert headers["x-content-type-options"] == "nosniff"  # security headers
    assert "max-age=" in headers["strict-transport-security"]  # HSTS saw the resolved https
    assert headers["x-request-id"]  # request id
    assert headers["server-timing"].startswith("app;dur=")  # timing
    assert headers["access-control-allow-origin"] == ORIGIN  # CORS
    assert headers["content-encoding"] == "gzip"  # compression
    cookie = headers["set-cookie"].lower()
    assert "; secure" in cookie  # https_only="auto" behind a trusted https proxy
    assert headers["ratelimit-policy"]  # rate-limit headers
    assert headers["ratelimit"]
    (line,) = stack.logged()
    assert (line["client"], line["status"], line["outcome"]) == (CLIENT, 200, "ok")
    assert line["request_id"] == headers["x-request-id"]
    (span,) = stack.telemetry.spans
    assert span.attributes is not None
    assert span.attributes["client.address"] == CLIENT


async def rate_limited(client: httpx.AsyncClient) -> httpx.Response:
    for _ in range(2):
        await client.get("/", headers=BROWSER)
    return await client.get("/", headers=BROWSER)


async def too_large(client: httpx.AsyncClient) -> httpx.Response:
    headers = {**BROWSER, "sec-fetch-site": "same-origin"}
    return await client.post("/", headers=headers, content=b"x" * 2000)


async def timed_out(client: httpx.AsyncClient) -> httpx.Response:
    return await client.get("/slow", headers=BROWSER)


async def cross_site(client: httpx.AsyncClient) -> httpx.Response:
    headers = {**BROWSER, "sec-fetch-site": "cross-site"}
    return await client.post("/", headers=headers, content=b"amount=1")


@pytest.mark.parametrize(
    ("refused", "status", "outcome"),
    [
        pytest.param(rate_limited, 429, "limited", id="rate limit"),
        pytest.param(timed_out, 504, "timeout", id="timeout"),
        pytest.param(too_large, 413, "too_large", id="body limit"),
        pytest.param(cross_site, 403, "forbidden", id="csrf"),
    ],
)
async def test_a_guards_refusal_carries_cors_and_security_headers_and_is_logged_once(
    stack: Stack, refused: Any, status: int, outcome: str
) -> None:
    response = await refused(stack.client)
    assert response.status_code == status
    assert response.headers["access-control-allow-origin"] == ORIGIN
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-request-id"]
    last = stack.logged()[-1]
    assert (last["status"], last["outcome"], last["client"]) == (status, outcome, CLIENT)
    assert [line["outcome"] for line in stack.logged()].count(outcome) == 1
    assert len(stack.logged()) == len(stack.telemetry.spans)  # one line and one span a request


@pytest.mark.parametrize(
    ("headers", "status", "outcome"),
    [
        pytest.param({"host": "evil.example"}, 400, "forbidden", id="unknown host"),
        pytest.param({"x-forwarded-proto": "http"}, 307, "ok", id="plain http at the balancer"),
    ],
)
async def test_edge_refusals_outside_cors_carry_security_headers_and_are_logged(
    stack: Stack, headers: dict[str, str], status: int, outcome: str
) -> None:
    response = await stack.client.get("/", headers={**BROWSER, **headers})
    assert response.status_code == status
    assert response.headers["x-content-type-options"] == "nosniff"
    (line,) = stack.logged()
    assert (line["status"], line["outcome"], line["client"]) == (status, outcome, CLIENT)
