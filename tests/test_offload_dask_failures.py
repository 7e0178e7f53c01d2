"""A Dask-backed pool when the cluster fails: a worker killed mid-call, the scheduler stopped.
Each test gets a throwaway cluster, so the shared one stays healthy."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from concurrent.futures import BrokenExecutor

import anyio
import pytest

from middlewares.offload import CallLostError, Pool, run_in_process

from .dask_cluster import (
    Cluster,
    connected,
    dask_cluster,
    die,
    die_once,
    fresh_pool,
    square,
    wait_for_release,
)

pytestmark = pytest.mark.anyio


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    # allowed-failures=0 fails fast: no second attempt on another worker after the first one died.
    with dask_cluster(workers=1, DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES="0") as cluster:
        yield cluster


@pytest.fixture
def pool(cluster: Cluster) -> Iterator[Pool]:
    # The client gives up on a stopped scheduler after 2 s; the pool's time box is 1 s.
    with connected(cluster, timeout=2) as client, fresh_pool(client, timeout=1) as pool:
        yield pool


async def test_by_default_dask_reruns_a_call_whose_worker_died() -> None:
    with dask_cluster(workers=2) as cluster, connected(cluster) as client:
        first_pids = set(client.run(os.getpid).values())
        with fresh_pool(client, timeout=30) as pool:
            survivor = await run_in_process(die_once, f"die-{uuid.uuid4().hex}", pool=pool)
        assert survivor in first_pids
        assert len(client.run(os.getpid)) == 1  # the other worker is gone


async def test_worker_killed_mid_call_raises_call_lost_at_the_await(pool: Pool) -> None:
    with pytest.raises(CallLostError, match=r"lost the call: Attempted to run task .*died"):
        await run_in_process(die, pool=pool)
    stats = pool.stats()
    assert (stats.running, stats.queued) == (0, 0)


async def test_scheduler_stopped_gives_a_clear_error_within_the_time_box(
    cluster: Cluster, pool: Pool
) -> None:
    assert await run_in_process(square, 4, pool=pool) == 16
    errors: list[BaseException] = []

    async def in_flight() -> None:
        with pytest.raises(BrokenExecutor) as caught:
            await run_in_process(wait_for_release, "never", pool=pool)
        errors.append(caught.value)

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(in_flight)
        while pool.stats().running == 0:  # noqa: ASYNC110 (the pool fills from a thread)
            await anyio.sleep(0.01)
        cluster.scheduler.kill()
    # The call in flight is lost at once; a new one waits at most the pool's 1 s time box
    # (the client would wait for the scheduler to come back).
    assert isinstance(errors[0], CallLostError)
    assert "executor cancelled it" in str(errors[0])
    with pytest.raises(TimeoutError, match="gave no result within 1 s"):
        await run_in_process(square, 5, pool=pool)
