"""Pools over an executor the user supplies: the same bound, stats, cancellation and time box."""

from __future__ import annotations

import re
import subprocess
import sys
import threading
from collections.abc import Callable
from concurrent.futures import BrokenExecutor, ThreadPoolExecutor
from contextlib import AbstractContextManager
from typing import Any

import anyio
import pytest

from middlewares.offload import (
    CallLostError,
    OffloadMiddleware,
    Pool,
    PoolFullError,
    run_in_thread,
    thread_pool,
)

from .dask_cluster import ROOT
from .test_offload_server import blocking_app

Serve = Callable[..., AbstractContextManager[str]]


async def wait_for(event: threading.Event) -> None:
    assert await anyio.to_thread.run_sync(event.wait, 10)


def blocker() -> tuple[Callable[[], str], threading.Event, threading.Event]:
    entered, release = threading.Event(), threading.Event()

    def block() -> str:
        entered.set()
        release.wait(10)
        return "done"

    return block, entered, release


@pytest.mark.anyio
async def test_supplied_executor_keeps_the_bound_and_the_stats() -> None:
    block, entered, release = blocker()
    with ThreadPoolExecutor(4, thread_name_prefix="users-own") as executor:
        pool = Pool("supplied", max_workers=1, max_queue=0, executor=executor)
        results: list[str] = []

        async def first() -> None:
            results.append(await run_in_thread(block, pool=pool))

        async with anyio.create_task_group() as tasks:
            tasks.start_soon(first)
            await wait_for(entered)
            assert (pool.stats().running, pool.stats().queued) == (1, 0)
            with pytest.raises(PoolFullError, match="pool 'supplied' is full"):
                await run_in_thread(str, pool=pool)
            release.set()
        assert results == ["done"]
        name = await run_in_thread(lambda: threading.current_thread().name, pool=pool)
        assert name.startswith("users-own")


@pytest.mark.anyio
@pytest.mark.parametrize(
    "supplied",
    [pytest.param(True, id="supplied executor"), pytest.param(False, id="the pool's own threads")],
)
async def test_shutdown_cancels_a_queued_call_and_its_caller_sees_it_lost(supplied: bool) -> None:
    block, entered, release = blocker()
    executor = ThreadPoolExecutor(1) if supplied else None
    pool = Pool("lost", max_workers=1, max_queue=1, executor=executor)
    errors: list[BaseException] = []

    async def queued() -> None:
        with pytest.raises(CallLostError, match="pool 'lost' lost the call") as caught:
            await run_in_thread(str, pool=pool)
        errors.append(caught.value)

    running = pool.submit(block)
    await wait_for(entered)
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(queued)
        while pool.stats().queued == 0:  # noqa: ASYNC110 (the queue is a thread's)
            await anyio.sleep(0.001)
        pool.shutdown(wait=False)
    release.set()
    assert running.result(10) == "done"  # a running call is never cut
    assert isinstance(errors[0], BrokenExecutor)
    with pytest.raises(RuntimeError, match="pool 'lost' cannot take new calls after shutdown"):
        pool.submit(str)
    if executor is not None:
        assert executor.submit(str, 7).result() == "7"  # its owner's executor still runs
        executor.shutdown()


def test_an_executor_its_owner_shut_down_refuses_and_frees_the_slot() -> None:
    executor = ThreadPoolExecutor(1)
    pool = Pool("owner-closed", max_workers=1, max_queue=0, executor=executor)
    executor.shutdown()
    with pytest.raises(RuntimeError, match="cannot schedule new futures after shutdown"):
        pool.submit(str)
    assert (pool.stats().running, pool.stats().queued) == (0, 0)


def test_shutdown_executor_true_shuts_it_down() -> None:
    executor = ThreadPoolExecutor(1)
    Pool("owner", executor=executor, shutdown_executor=True).shutdown()
    with pytest.raises(RuntimeError, match="shutdown"):
        executor.submit(str)


@pytest.mark.anyio
async def test_time_box_abandons_and_counts_a_running_call() -> None:
    block, _, release = blocker()
    pool = Pool("boxed", max_workers=1, timeout=0.05)
    with pytest.raises(TimeoutError, match=r"pool 'boxed' gave no result within 0.05 s"):
        await run_in_thread(block, pool=pool)
    assert pool.stats().abandoned == 1  # a thread cannot be stopped: it is counted
    release.set()
    pool.shutdown()
    assert pool.stats().abandoned == 0


class NotAnExecutor:
    def submit(self, fn: Any, *args: Any) -> None:
        raise AssertionError("not reached")


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        pytest.param(
            {"timeout": 0},
            ValueError,
            "timeout must be a positive number of seconds, got 0",
            id="zero timeout",
        ),
        pytest.param(
            {"shutdown_executor": True},
            ValueError,
            "shutdown_executor=True needs an executor",
            id="nothing to shut down",
        ),
        pytest.param(
            {"executor": NotAnExecutor()},
            TypeError,
            "executor must be a concurrent.futures",
            id="not an executor",
        ),
    ],
)
def test_pool_configuration(kwargs: dict[str, Any], error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=re.escape(message)):
        Pool("bad", **kwargs)


def test_named_pool_keeps_its_executor_and_time_box() -> None:
    with ThreadPoolExecutor(1) as executor, ThreadPoolExecutor(1) as other:
        pool = thread_pool("named-supplied", executor=executor, timeout=5)
        assert thread_pool("named-supplied", executor=executor, timeout=5) is pool
        with pytest.raises(ValueError, match="'named-supplied' already exists with another"):
            thread_pool("named-supplied", executor=other)
        with pytest.raises(ValueError, match="already exists with timeout=5, got 1"):
            thread_pool("named-supplied", timeout=1)
        pool.shutdown()


@pytest.mark.anyio
async def test_thread_only_callers_refuse_a_process_pool() -> None:
    pool = Pool("procs", processes=True, executor=ThreadPoolExecutor(1), shutdown_executor=True)
    with pytest.raises(TypeError, match="run_in_thread needs a thread pool, 'procs' runs proc"):
        await run_in_thread(str, pool=pool)
    with pytest.raises(TypeError, match="pool must run threads, 'procs' runs processes"):
        OffloadMiddleware(blocking_app(threading.Event(), threading.Event()), pool=pool)
    pool.shutdown()


def test_importing_the_package_never_imports_dask() -> None:
    # distributed is installed here; only a user's Client brings it in.
    probe = "import sys, middlewares; print(sorted({'dask', 'distributed'} & set(sys.modules)))"
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, check=True, capture_output=True, text=True
    )
    assert result.stdout.strip() == "[]"
