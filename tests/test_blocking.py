"""BlockingDetector: names the request that blocked the loop, quiet otherwise, off by default."""

from __future__ import annotations

import logging
import threading
from typing import Any

import anyio
import pytest

from middlewares.blocking import ENV_VAR, BlockingDetector, request_on_stack
from middlewares.testing import http_scope, run_asgi, websocket_scope

pytestmark = pytest.mark.anyio

LOGGER = "tests.blocking"


class Signal(logging.Handler):
    """Sets an event when the detector reports, so a test can block exactly until then."""

    def __init__(self) -> None:
        super().__init__()
        self.reported = threading.Event()

    def emit(self, record: logging.LogRecord) -> None:
        self.reported.set()


@pytest.fixture
def signal() -> Any:
    handler = Signal()
    logger = logging.getLogger(LOGGER)
    logger.addHandler(handler)
    yield handler
    logger.removeHandler(handler)


@pytest.fixture(autouse=True)
def no_watchdog_left() -> None:
    # Watchdogs of earlier tests stop as soon as their last request leaves; wait for that.
    for thread in watchdogs():
        thread.join(10)


def watchdogs() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "middlewares-blocking-watchdog"]


async def ok(send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok", "more_body": False})


async def test_reports_the_blocking_request_with_its_stack(
    caplog: pytest.LogCaptureFixture, signal: Signal
) -> None:
    async def sync_driver_call(scope: Any, receive: Any, send: Any) -> None:
        # Blocks the event loop until the detector has reported it (no sleeping on a guess).
        assert signal.reported.wait(10)
        await ok(send)

    detector = BlockingDetector(sync_driver_call, threshold=0.02, enabled=True, logger=LOGGER)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        recorded = await run_asgi(detector, http_scope("POST", "/reports/42"))
        assert recorded.status == 200
        while len(caplog.records) < 2:  # noqa: ASYNC110 (the second record comes from a thread)
            await anyio.sleep(0.005)
    stall, summary = caplog.records[:2]
    assert "event loop blocked for more than" in stall.getMessage()
    assert "while serving POST /reports/42" in stall.getMessage()
    assert "in sync_driver_call" in stall.getMessage()  # the stack names the culprit
    assert (stall.method, stall.path) == ("POST", "/reports/42")  # type: ignore[attr-defined]
    assert summary.getMessage().startswith("event loop was blocked for ")
    assert summary.blocked_for >= 0.02  # type: ignore[attr-defined]


async def test_quiet_when_handlers_only_await(caplog: pytest.LogCaptureFixture) -> None:
    seen: list[int] = []

    async def polite(scope: Any, receive: Any, send: Any) -> None:
        for _ in range(10):
            await anyio.sleep(0.01)
        seen.append(len(watchdogs()))
        await ok(send)

    detector = BlockingDetector(polite, threshold=0.5, enabled=True, logger=LOGGER)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        await run_asgi(detector)
    assert seen == [1]  # it was watching
    assert caplog.records == []


async def test_watchdog_stops_when_no_request_is_in_flight() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await ok(send)

    detector = BlockingDetector(app, threshold=0.01, enabled=True)
    await run_asgi(detector)
    while watchdogs():  # noqa: ASYNC110 (a thread)
        await anyio.sleep(0.005)
    await run_asgi(detector)  # and a new one starts for the next request


async def test_concurrent_requests_share_one_watchdog() -> None:
    counts: list[int] = []
    both = anyio.Event()
    arrived = 0

    async def app(scope: Any, receive: Any, send: Any) -> None:
        nonlocal arrived
        arrived += 1
        if arrived == 2:
            both.set()
        await both.wait()
        counts.append(len(watchdogs()))
        await ok(send)

    detector = BlockingDetector(app, enabled=True)
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(run_asgi, detector)
        tasks.start_soon(run_asgi, detector)
    assert counts == [1, 1]


@pytest.mark.parametrize(
    ("env", "enabled", "watching"),
    [
        pytest.param(None, None, False, id="off by default"),
        pytest.param("1", None, True, id="on from the environment"),
        pytest.param("true", False, False, id="argument wins over environment"),
        pytest.param(None, True, True, id="on by argument"),
    ],
)
async def test_enabling(
    monkeypatch: pytest.MonkeyPatch, env: str | None, enabled: bool | None, watching: bool
) -> None:
    if env is None:
        monkeypatch.delenv(ENV_VAR, raising=False)
    else:
        monkeypatch.setenv(ENV_VAR, env)
    seen: list[bool] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(bool(watchdogs()))
        await ok(send)

    await run_asgi(BlockingDetector(app, enabled=enabled, threshold=5))
    assert seen == [watching]


async def test_lifespan_is_not_watched() -> None:
    seen: list[bool] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(bool(watchdogs()))

    async def receive() -> Any:
        return {"type": "lifespan.startup"}

    async def send(message: Any) -> None:
        return None

    while watchdogs():  # noqa: ASYNC110 (a thread from an earlier test)
        await anyio.sleep(0.005)
    await BlockingDetector(app, enabled=True)({"type": "lifespan"}, receive, send)
    assert seen == [False]


async def test_websocket_is_watched() -> None:
    seen: list[bool] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(bool(watchdogs()))
        await receive()
        await send({"type": "websocket.close", "code": 1000})

    await run_asgi(BlockingDetector(app, enabled=True, threshold=5), websocket_scope())
    assert seen == [True]


def test_request_on_stack_without_a_request() -> None:
    import sys

    assert request_on_stack(None) == ("?", "(no request on the loop's stack)")
    assert request_on_stack(sys._getframe()) == ("?", "(no request on the loop's stack)")


@pytest.mark.parametrize("threshold", [0, -1, "0.1"])
def test_threshold_must_be_positive(threshold: Any) -> None:
    with pytest.raises(ValueError, match="threshold must be a positive number of seconds"):
        BlockingDetector(ok, threshold=threshold)
