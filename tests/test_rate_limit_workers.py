"""Four uvicorn processes on one Redis (trap 4): 2N concurrent requests from one client against
a limit of N allow exactly N, round after round; and two clients that uvicorn's trusted-proxy
handling resolved from ``X-Forwarded-For`` get two buckets."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter

import httpx
import pytest

from benchmarks.serve import uvicorn_process
from tests.rate_limit_worker import N
from tests.servers import redis_server

pytestmark = [pytest.mark.anyio, pytest.mark.server]

WORKERS = 4
ROUNDS = 3


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_trap4_four_workers_on_one_redis_allow_exactly_n_per_client() -> None:
    with redis_server() as (url, _), contextlib.ExitStack() as stack:
        bases = [
            stack.enter_context(
                uvicorn_process(
                    "tests.rate_limit_worker:make_app",
                    "--factory",
                    "--proxy-headers",
                    "--forwarded-allow-ips",
                    "127.0.0.1",
                    env={"RATE_LIMIT_REDIS_URL": url},
                )
            )[0]
            for _ in range(WORKERS)
        ]
        limits = httpx.Limits(max_connections=4 * N)
        async with httpx.AsyncClient(limits=limits, timeout=30) as client:

            async def get(n: int, address: str) -> tuple[str, int]:
                base = bases[n % WORKERS]
                response = await client.get(base, headers={"x-forwarded-for": address})
                return address, response.status_code

            for round_ in range(ROUNDS):
                alice, bob = f"198.51.100.{round_}", f"203.0.113.{round_}"
                results = await asyncio.gather(
                    *(get(n, address) for n in range(2 * N) for address in (alice, bob))
                )
                counted = Counter(results)
                assert counted == {
                    (alice, 200): N,
                    (alice, 429): N,
                    (bob, 200): N,
                    (bob, 429): N,
                }, round_
