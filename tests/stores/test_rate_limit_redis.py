"""RedisRateLimitStore against a real redis-server: one atomic round trip on Redis's clock,
all-or-nothing policies, hash-tagged keys, and the traps that need shared state (13, 19)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from redis.crc import key_slot

from middlewares import RateLimit, RateLimitMiddleware
from middlewares.rate_limit import SCOPE_KEY
from middlewares.stores import RedisRateLimitStore
from middlewares.testing import Recorded, http_scope, run_asgi
from tests.test_rate_limit import ok_app

pytestmark = pytest.mark.anyio


async def hit(app: Any, path: str = "/", client: str = "198.51.100.7") -> Recorded:
    return await run_asgi(app, http_scope(path=path, client=(client, 1)))


async def command_calls(client: Any) -> dict[str, int]:
    stats = await client.info("commandstats")
    return {name: int(value["calls"]) for name, value in stats.items() if name != "cmdstat_info"}


async def test_limits_are_kept_in_redis_under_hash_tagged_keys_that_expire(
    redis_url: str, redis_client: Any
) -> None:
    store = RedisRateLimitStore(redis_url, prefix="rl:")
    app = RateLimitMiddleware(
        ok_app,
        application_limits=[RateLimit("2/minute", name="burst")],
        route_limits={"/login": RateLimit("5/hour", name="login")},
        store=store,
        store_timeout=5,
    )
    response = await hit(app, "/login")
    assert response.header("ratelimit") == '"burst";r=1;t=30, "login";r=4;t=720'
    keys = sorted(k.decode() for k in await redis_client.keys("*"))
    assert keys == [
        "rl:{198.51.100.7}:/login|5/3600/5/gcra/login",
        "rl:{198.51.100.7}:2/60/2/gcra/burst",
    ]
    assert 0 < await redis_client.pttl(keys[1]) <= 30_001
    assert [(await hit(app)).status for _ in range(2)] == [200, 429]
    await store.aclose()


async def test_a_request_refused_by_one_policy_consumes_none_of_the_others(
    redis_client: Any,
) -> None:
    store = RedisRateLimitStore(client=redis_client)
    app = RateLimitMiddleware(
        ok_app,
        application_limits=[RateLimit("3/5 seconds", name="burst"), RateLimit("100/day", name="d")],
        store=store,
        store_timeout=5,
    )
    statuses = [(await hit(app)).status for _ in range(10)]
    assert statuses == [200] * 3 + [429] * 7
    last = await hit(app)
    assert '"d";r=97' in (last.header("ratelimit") or "")
    await store.aclose()  # the app's own client stays open
    assert await redis_client.ping()


async def test_exactly_one_round_trip_per_request(redis_url: str, redis_client: Any) -> None:
    store = RedisRateLimitStore(redis_url)
    app = RateLimitMiddleware(
        ok_app,
        application_limits=["1000/minute", RateLimit("10000/day", name="daily")],
        route_limits={"/api/*": "500/minute"},
        store=store,
        store_timeout=5,
    )
    await hit(app, "/api/x")  # loads the script
    before = await command_calls(redis_client)
    for n in range(20):
        await hit(app, "/api/x", client=f"198.51.100.{n}")
    after = await command_calls(redis_client)
    changed = {name: after[name] - before.get(name, 0) for name in after}
    # One EVALSHA per request is the only command sent; Redis also counts what the script
    # runs inside that call: its clock, then a read and a write per policy.
    assert {name: count for name, count in changed.items() if count} == {
        "cmdstat_evalsha": 20,
        "cmdstat_time": 20,
        "cmdstat_get": 60,
        "cmdstat_set": 60,
    }
    await store.aclose()


async def test_the_script_is_loaded_again_after_a_flush_or_restart(
    redis_client: Any,
) -> None:
    store = RedisRateLimitStore(client=redis_client)
    app = RateLimitMiddleware(ok_app, application_limits=["2/minute"], store=store, store_timeout=5)
    assert (await hit(app)).status == 200
    await redis_client.script_flush()
    assert [(await hit(app)).status for _ in range(2)] == [200, 429]


async def test_trap13_concurrent_hits_in_the_same_millisecond_all_count(redis_url: str) -> None:
    # More at once than redis-py's default pool of 100 connections allows: none fails.
    store = RedisRateLimitStore(redis_url)
    limits = [RateLimit("150/minute")]
    results = await asyncio.gather(*(store.charge("k", limits, 1) for _ in range(160)))
    assert sum(allowed for allowed, _ in results) == 150
    await store.aclose()


async def test_trap13_machines_with_clocks_5s_apart_share_one_window(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    machine_a, machine_b = RedisRateLimitStore(redis_url), RedisRateLimitStore(redis_url)
    options: dict[str, Any] = {"application_limits": ["4/minute"], "store_timeout": 5}
    on_a = RateLimitMiddleware(ok_app, store=machine_a, **options)
    on_b = RateLimitMiddleware(ok_app, store=machine_b, **options)
    real_time, real_monotonic = time.time, time.monotonic

    async def skewed(app: Any, seconds: float) -> Recorded:
        monkeypatch.setattr(time, "time", lambda: real_time() + seconds)
        monkeypatch.setattr(time, "monotonic", lambda: real_monotonic() + seconds)
        try:
            return await hit(app)
        finally:
            monkeypatch.undo()

    statuses = [
        (await skewed(on_a, +5)).status,
        (await skewed(on_b, -5)).status,
        (await skewed(on_a, +5)).status,
        (await skewed(on_b, -5)).status,
    ]
    refused_a, refused_b = await skewed(on_a, +5), await skewed(on_b, -5)
    assert statuses == [200, 200, 200, 200]
    assert (refused_a.status, refused_b.status) == (429, 429)
    assert refused_a.header("retry-after") == refused_b.header("retry-after") == "15"
    await machine_a.aclose()
    await machine_b.aclose()


def test_trap19_every_key_of_a_request_lives_in_one_cluster_slot() -> None:
    store = RedisRateLimitStore("redis://127.0.0.1:1")
    limits = [
        RateLimit("10/second", name="s"),
        RateLimit("100/minute", name="m")._bound("/api/*"),
        RateLimit("1000/day", name="d"),
    ]
    for key in ("198.51.100.7", "2001:db8::/64", "h:" + "f" * 32, "odd}{key"):
        slots = {key_slot(name.encode()) for name in store.keys_for(key, limits)}
        assert len(slots) == 1, key


def test_construction_errors_name_the_argument() -> None:
    with pytest.raises(ValueError, match="exactly one of url or client"):
        RedisRateLimitStore()
    with pytest.raises(ValueError, match="timeout"):
        RedisRateLimitStore("redis://127.0.0.1:1", timeout=0)


async def test_the_decision_carries_redis_states_to_the_app(redis_client: Any) -> None:
    seen: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(scope[SCOPE_KEY])
        await ok_app(scope, receive, send)

    middleware = RateLimitMiddleware(
        app,
        application_limits=["3/minute"],
        store=RedisRateLimitStore(client=redis_client),
        store_timeout=5,
    )
    await hit(middleware)
    (state,) = seen[0].states
    assert state.remaining == 2
    assert state.reset == pytest.approx(20, abs=0.01)
    assert state.retry_after == 0


async def test_a_fixed_window_on_redis_resets_at_the_window_end_of_redis_clock(
    redis_client: Any,
) -> None:
    store = RedisRateLimitStore(client=redis_client)
    limits = [RateLimit("3/hour", strategy="fixed-window"), RateLimit("100/minute")]
    seconds, micros = await redis_client.time()
    window_left = 3600 - (seconds % 3600) - micros / 1e6
    results = [await store.charge("k", limits, 1) for _ in range(4)]
    assert [allowed for allowed, _ in results] == [True, True, True, False]
    fixed, smooth = results[3][1]
    assert (fixed.remaining, smooth.remaining) == (0, 97)  # the refusal charged neither
    assert fixed.retry_after == fixed.reset
    assert window_left - 1 < fixed.reset <= window_left
    (key,) = [k for k in await redis_client.keys("*") if b"fixed-window" in k]
    assert await redis_client.pttl(key) <= window_left * 1000 + 2


@pytest.mark.parametrize(
    "rate",
    [
        pytest.param("7/day", id="7 a day, an interval that is no whole µs"),
        pytest.param("7/minute", id="7 a minute"),
        pytest.param("9/minute", id="9 a minute"),
    ],
)
@pytest.mark.parametrize("strategy", ["fixed-window", "gcra"])
async def test_redis_admits_exactly_the_quota_like_the_memory_store(
    redis_client: Any, rate: str, strategy: Any
) -> None:
    limits = [RateLimit(rate, strategy=strategy)]
    quota = int(rate.split("/")[0])
    store = RedisRateLimitStore(client=redis_client)
    allowed = [(await store.charge(f"{rate}-{strategy}", limits, 1))[0] for _ in range(quota + 1)]
    assert allowed == [True] * quota + [False]
