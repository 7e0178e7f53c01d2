"""The whole stack in several orders on one app: every layer's work survives the others."""

from __future__ import annotations

import gzip
import json

import pytest

from middlewares import (
    CompressionMiddleware,
    CORSMiddleware,
    Layer,
    RequestIDMiddleware,
    RequestTiming,
    SessionMiddleware,
    TimingMiddleware,
    compose,
)
from middlewares._types import ASGIApp, Message, Receive, Scope, Send
from middlewares.testing import ASGIValidator, http_scope, run_asgi

pytestmark = pytest.mark.anyio

ORIGIN = "https://app.example.com"
PAYLOAD = json.dumps([{"id": i, "name": f"item {i}"} for i in range(200)]).encode()


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def endpoint(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["path"] == "/boom":
        raise RuntimeError("the handler failed")
    scope["session"]["seen"] = True
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(PAYLOAD)).encode()),
                (b"vary", b"User-Agent"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": PAYLOAD})


class SlowLayer:
    """A layer that takes 7 ms of the fake clock before the app answers."""

    def __init__(self, app: ASGIApp, *, clock: FakeClock) -> None:
        self.app = app
        self.clock = clock

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.clock.now += 0.007
        await self.app(scope, receive, send)


def layers(clock: FakeClock, reports: list[RequestTiming]) -> dict[str, Layer]:
    return {
        "request-id": Layer(RequestIDMiddleware),
        "timing": Layer(TimingMiddleware, clock=clock, on_timing=reports.append),
        "cors": Layer(CORSMiddleware, allow_origins=[ORIGIN], allow_credentials=True),
        "compression": Layer(CompressionMiddleware, encodings=["gzip"]),
        "sessions": Layer(SessionMiddleware, secret_key="k" * 32),
    }


RECOMMENDED = ("request-id", "timing", "cors", "compression", "sessions")
ORDERS = [
    pytest.param(RECOMMENDED, id="recommended"),
    pytest.param(tuple(reversed(RECOMMENDED)), id="reversed"),
    pytest.param(
        ("compression", "sessions", "cors", "timing", "request-id"), id="compression outside"
    ),
    pytest.param(
        ("sessions", "cors", "request-id", "compression", "timing"), id="sessions outside"
    ),
]
REQUEST = http_scope(headers={"origin": ORIGIN, "accept-encoding": "gzip", "user-agent": "test"})


def build(order: tuple[str, ...], clock: FakeClock, reports: list[RequestTiming]) -> ASGIApp:
    available = layers(clock, reports)
    return compose(endpoint, *(available[name] for name in order))


@pytest.mark.parametrize("order", ORDERS)
async def test_every_layer_survives_the_others(order: tuple[str, ...]) -> None:
    reports: list[RequestTiming] = []
    result = await run_asgi(build(order, FakeClock(), reports), dict(REQUEST))

    assert result.status == 200
    assert result.header("content-encoding") == "gzip"
    assert result.header("content-length") == str(len(result.body))
    assert gzip.decompress(result.body) == PAYLOAD
    vary = result.header_all("vary")
    assert len(vary) == 1
    tokens = [token.strip().lower() for token in vary[0].split(",")]
    assert sorted(tokens) == ["accept-encoding", "cookie", "origin", "user-agent"]
    assert result.header("access-control-allow-origin") == ORIGIN
    assert result.header("access-control-allow-credentials") == "true"
    assert "session=" in (result.header("set-cookie") or "")
    assert result.header(
        "server-timing",
    ).startswith("app;dur=")  # type: ignore[union-attr]
    assert len(result.header_all("x-request-id")) == 1
    assert [report.status for report in reports] == [200]


@pytest.mark.parametrize("order", ORDERS)
async def test_a_crash_still_reaches_the_browser_as_a_500_with_cors(
    order: tuple[str, ...],
) -> None:
    reports: list[RequestTiming] = []
    app = ASGIValidator(build(order, FakeClock(), reports))
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {**REQUEST, "path": "/boom", "raw_path": b"/boom"}
    with pytest.raises(RuntimeError, match="the handler failed"):  # still raised for the logs
        await app(scope, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    assert start["status"] == 500
    assert dict(start["headers"])[b"access-control-allow-origin"] == ORIGIN.encode()
    assert [report.status for report in reports] == [500]


async def test_timings_include_inner_middleware() -> None:
    clock = FakeClock()
    reports: list[RequestTiming] = []
    available = layers(clock, reports)
    app = compose(
        endpoint,
        available["timing"],
        available["compression"],
        Layer(SlowLayer, clock=clock),
        available["sessions"],
    )
    result = await run_asgi(app, dict(REQUEST))
    assert result.header("server-timing") == "app;dur=7.000"
    assert reports[0].ttfb == pytest.approx(0.007)
