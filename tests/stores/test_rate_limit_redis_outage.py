"""A real redis-server killed, paused (``DEBUG SLEEP``) and restarted under RateLimitMiddleware
(trap 12), and the event loop kept free while Redis is slow (trap 8). Each test runs its own
server so the shared one is never disturbed."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from typing import Any

import pytest
import redis.asyncio

from middlewares import RateLimitMiddleware
from middlewares.stores import RedisRateLimitStore
from middlewares.testing import Recorded, http_scope, run_asgi
from tests.servers import free_port, redis_server
from tests.test_rate_limit import Clock, ok_app

pytestmark = pytest.mark.anyio


class OwnRedis:
    """A redis-server on a fixed port that the test may kill and start again."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.running = contextlib.ExitStack()

    def start(self) -> None:
        _, self.process = self.running.enter_context(
            redis_server("--enable-debug-command", "local", port=self.port)
        )

    def kill(self) -> None:
        self.process.kill()  # SIGKILL: no goodbye to the clients
        self.running.close()


@pytest.fixture
def own_redis() -> Iterator[OwnRedis]:
    server = OwnRedis()
    server.start()
    try:
        yield server
    finally:
        server.kill()


async def hit(app: Any, path: str = "/") -> Recorded:
    return await run_asgi(app, http_scope(path=path, client=("198.51.100.7", 1)))


def limited(
    url: str, clock: Clock, timeout: float = 0.5, **options: Any
) -> tuple[RateLimitMiddleware, Any]:
    store = RedisRateLimitStore(url, timeout=timeout)
    settings = {"application_limits": ["2/minute"], "store_timeout": 0.05, **options}
    return RateLimitMiddleware(ok_app, store=store, clock=clock, **settings), store


async def test_trap12_redis_killed_fail_open_serves_and_counts_then_resumes_on_restart(
    own_redis: OwnRedis,
) -> None:
    clock = Clock()
    # A generous store_timeout: on a loaded machine the first connection may take over 50 ms,
    # which would count the request before the outage as degraded too. A killed server
    # refuses connections at once, so the outage is still detected immediately.
    app, store = limited(own_redis.url, clock, store_timeout=2.0)
    assert (await hit(app)).status == 200
    own_redis.kill()
    assert [(await hit(app)).status for _ in range(4)] == [200] * 4
    assert app.store_errors == 1  # the breaker kept the other three off the dead server
    assert app.degraded_requests == 4
    own_redis.start()
    clock.now += 1  # the breaker's cooldown
    assert [(await hit(app)).status for _ in range(3)] == [200, 200, 429]
    await store.aclose()


async def test_trap12_redis_killed_fail_closed_answers_503_with_retry_after(
    own_redis: OwnRedis,
) -> None:
    app, store = limited(own_redis.url, Clock(), fail_open=False)
    own_redis.kill()
    refused = await hit(app)
    assert refused.status == 503
    assert refused.header("retry-after") == "1"
    await store.aclose()


async def test_trap12_redis_paused_answers_within_the_time_box_and_resumes(
    own_redis: OwnRedis,
) -> None:
    clock = Clock()
    app, store = limited(own_redis.url, clock, application_limits=["1/minute"])
    admin = redis.asyncio.from_url(own_redis.url)
    pause = asyncio.ensure_future(admin.execute_command("DEBUG", "SLEEP", "1"))
    await asyncio.sleep(0.1)  # the server is now asleep
    response = await hit(app)
    assert response.status == 200
    assert not pause.done()  # answered while Redis still sleeps: the time box held
    assert app.store_errors == 1
    await pause
    clock.now += 1
    assert [(await hit(app)).status for _ in range(2)] == [200, 429]
    await admin.aclose()
    await store.aclose()


async def test_trap8_a_slow_redis_never_blocks_other_requests(own_redis: OwnRedis) -> None:
    app, store = limited(own_redis.url, Clock(), store_timeout=None, exclude_paths=["/health"])
    admin = redis.asyncio.from_url(own_redis.url)
    finished: list[str] = []

    async def request(path: str) -> None:
        await hit(app, path)
        finished.append(path)

    pause = asyncio.ensure_future(admin.execute_command("DEBUG", "SLEEP", "0.5"))
    await asyncio.sleep(0.05)
    limited_request = asyncio.ensure_future(request("/limited"))
    await asyncio.sleep(0.05)
    await request("/health")
    assert finished == ["/health"]  # served while the limited request waits on Redis
    await limited_request
    assert finished == ["/health", "/limited"]
    await pause
    await admin.aclose()
    await store.aclose()


async def test_trap12_an_unreachable_redis_cluster_gets_the_outage_policy_not_a_500() -> None:
    from redis.asyncio.cluster import RedisCluster

    client = RedisCluster(host="127.0.0.1", port=free_port())  # no cluster listens there
    store = RedisRateLimitStore(client=client)
    app = RateLimitMiddleware(ok_app, application_limits=["5/minute"], store=store)
    assert (await run_asgi(app, http_scope())).status == 200  # fail open, the default
    assert app.degraded_requests == 1
    closed = RateLimitMiddleware(
        ok_app, application_limits=["5/minute"], store=store, fail_open=False
    )
    refused = await run_asgi(closed, http_scope())
    assert refused.status == 503
    assert int(refused.header("retry-after")) >= 1
    await client.aclose()
