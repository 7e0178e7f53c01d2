"""The outage policy with stores that fail or hang (trap 12), and the in-memory store's bounded
memory (trap 18)."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import anyio
import pytest

from middlewares import RateLimit, RateLimitMiddleware
from middlewares.rate_limit import SCOPE_KEY, PolicyState, RateLimitStoreError
from middlewares.stores import MemoryRateLimitStore
from middlewares.testing import Recorded, http_scope, run_asgi

from .test_rate_limit import Clock, ok_app

pytestmark = pytest.mark.anyio


class FlakyStore:
    """A store whose answers the test switches between working, failing and hanging."""

    def __init__(self, clock: Clock) -> None:
        self.mode = "fail"
        self.calls = 0
        self.working = MemoryRateLimitStore(clock=clock)

    async def charge(
        self, key: str, limits: Sequence[RateLimit], cost: int
    ) -> tuple[bool, Sequence[PolicyState]]:
        self.calls += 1
        if self.mode == "fail":
            raise RateLimitStoreError("connection refused")
        if self.mode == "oserror":
            raise ConnectionResetError("reset by peer")
        if self.mode == "hang":
            await anyio.sleep_forever()
        if self.mode == "bug":
            raise KeyError("a bug in the store")
        return await self.working.charge(key, limits, cost)


def make(**options: Any) -> tuple[RateLimitMiddleware, FlakyStore, Clock]:
    clock = Clock()
    store = FlakyStore(clock)
    settings = {"application_limits": [RateLimit("2/minute", name="m")], **options}
    middleware = RateLimitMiddleware(ok_app, store=store, clock=clock, **settings)
    return middleware, store, clock


async def hit(app: Any) -> Recorded:
    return await run_asgi(app, http_scope(client=("198.51.100.9", 1)))


@pytest.mark.parametrize("mode", ["fail", "oserror", "hang"])
async def test_trap12_fail_open_lets_requests_through_logged_and_counted(
    mode: str, caplog: pytest.LogCaptureFixture
) -> None:
    app, store, _clock = make(store_timeout=0.01, breaker_cooldown=0)
    store.mode = mode
    with anyio.fail_after(5):  # a hang guard: the time box ends each call
        responses = [await hit(app) for _ in range(3)]
    assert [r.status for r in responses] == [200, 200, 200]
    assert responses[0].header("ratelimit-policy") == '"m";q=2;w=60'
    assert responses[0].header("ratelimit") is None  # nothing known to report
    assert (app.store_errors, app.degraded_requests) == (3, 3)
    assert any("store unavailable" in r.getMessage() for r in caplog.records)


async def test_trap12_fail_closed_refuses_with_503_and_retry_after() -> None:
    app, _store, _ = make(fail_open=False, breaker_cooldown=2.5)
    scope = http_scope(client=("198.51.100.9", 1))
    refused = await run_asgi(app, scope)
    assert refused.status == 503
    assert refused.header("retry-after") == "3"
    assert refused.body == b"Service Unavailable"
    assert scope[SCOPE_KEY].degraded == "fail-closed"


async def test_fail_closed_problem_json_says_the_limiter_is_unavailable() -> None:
    app, _, _ = make(fail_open=False, error_format="problem+json")
    refused = await hit(app)
    assert refused.status == 503
    assert b"unavailable" in refused.body


async def test_the_breaker_leaves_a_dead_store_alone_then_one_request_probes_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app, store, clock = make(breaker_cooldown=1.0)
    for _ in range(5):
        assert (await hit(app)).status == 200
    assert store.calls == 1  # the first failure opened the breaker
    clock.now += 1.0
    store.mode = "ok"
    assert (await hit(app)).header("ratelimit") == '"m";r=1;t=30'
    assert (await hit(app)).status == 200
    assert (await hit(app)).status == 429  # limiting resumed by itself
    assert store.calls == 4
    assert any("answers again" in r.getMessage() for r in caplog.records)


async def test_a_failed_probe_keeps_the_breaker_open_for_another_cooldown() -> None:
    app, store, clock = make(breaker_cooldown=1.0)
    await hit(app)
    clock.now += 1.5
    await hit(app)
    await hit(app)
    assert store.calls == 2
    clock.now += 1.0
    await hit(app)
    assert store.calls == 3


async def test_local_fallback_bucket_divides_the_limit_between_workers_while_down() -> None:
    app, _store, _clock = make(
        application_limits=[RateLimit("100/minute", name="api")], fallback_workers=4
    )
    scope = http_scope(client=("198.51.100.9", 1))
    first = await run_asgi(app, scope)
    assert scope[SCOPE_KEY].degraded == "fallback"
    assert first.header("ratelimit-policy") == '"api";q=25;w=60'
    assert first.header("ratelimit") == '"api";r=24;t=3'
    statuses = [(await hit(app)).status for _ in range(25)]
    assert statuses == [200] * 24 + [429]


async def test_legacy_headers_during_fallback_report_the_local_share() -> None:
    app, _, _ = make(application_limits=["100/minute"], fallback_workers=4, legacy_headers=True)
    assert (await hit(app)).header("x-ratelimit-limit") == "25"


async def test_a_bug_in_the_store_is_not_mistaken_for_an_outage() -> None:
    app, store, _ = make()
    store.mode = "bug"
    with pytest.raises(KeyError):
        await hit(app)


async def test_without_a_time_box_the_store_is_awaited_as_long_as_it_takes() -> None:
    app, store, _ = make(store_timeout=None)
    store.mode = "ok"
    assert [(await hit(app)).status for _ in range(3)] == [200, 200, 429]


# --- the in-memory store's memory (trap 18) ---------------------------------------------------


@pytest.mark.parametrize("policies", [1, 3], ids=["one policy", "three policies"])
def test_trap18_100k_one_shot_keys_come_back_to_baseline(policies: int) -> None:
    clock = Clock()
    store = MemoryRateLimitStore(clock=clock)
    limits = [RateLimit(f"{10 * n}/minute", name=f"p{n}") for n in range(1, policies + 1)]
    store.charge_now("198.51.100.1", limits, 1)
    baseline = sys.getsizeof(store._entries)
    for n in range(100_000):
        store.charge_now(f"10.{n >> 16}.{(n >> 8) & 255}.{n & 255}", limits, 1)
    assert len(store) > 90_000 * policies
    grown = sys.getsizeof(store._entries)
    clock.now += 61  # every allowance is whole again
    for _ in range(60_000 * policies):  # ordinary traffic from one client sweeps as it goes
        store.charge_now("198.51.100.1", limits, 1)
        clock.now += 6
    assert len(store) == policies
    assert grown > 100 * baseline
    assert sys.getsizeof(store._entries) < grown / 1000


def test_trap18_one_shot_clients_under_three_policies_stay_within_the_window() -> None:
    clock = Clock()
    store = MemoryRateLimitStore(clock=clock)
    limits = [RateLimit("10/second", name="a"), RateLimit("20/second", name="b")]
    limits.append(RateLimit("30/second", name="c"))
    for n in range(30_000):  # a new client every millisecond, each whole again after 1 s
        clock.now += 0.001
        store.charge_now(f"k{n}", limits, 1)
    assert len(store) < 3 * 1_100  # the clients of the last second or so, not all 30,000


async def test_max_keys_bounds_a_flood_of_fresh_keys_by_dropping_the_oldest() -> None:
    store = MemoryRateLimitStore(max_keys=100, clock=Clock())
    limits = [RateLimit("1/hour")]
    for n in range(1000):
        await store.charge(f"k{n}", limits, 1)
    assert len(store) == 100
    assert (await store.charge("k999", limits, 1))[0] is False  # recent keys are kept


def test_max_keys_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_keys"):
        MemoryRateLimitStore(max_keys=0)
