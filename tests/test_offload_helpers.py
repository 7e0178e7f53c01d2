"""run_in_thread / run_in_process and named bounded pools."""

from __future__ import annotations

import contextvars
import functools
import re
import threading
from typing import Any

import anyio
import pytest

from middlewares.offload import (
    Pool,
    PoolFullError,
    process_pool,
    run_in_process,
    run_in_thread,
    thread_pool,
)

pytestmark = pytest.mark.anyio

user: contextvars.ContextVar[str] = contextvars.ContextVar("user", default="anonymous")


def square(x: int) -> int:
    return x * x


def describe(prefix: str, *, suffix: str) -> str:
    return f"{prefix} {threading.current_thread().name} {user.get()} {suffix}"


async def wait_for(event: threading.Event) -> None:
    assert await anyio.to_thread.run_sync(event.wait, 10)


async def test_run_in_thread_on_a_named_pool_with_context() -> None:
    user.set("ada")
    result = await run_in_thread(describe, "ran on", pool="helpers-db", suffix="!")
    _, _, thread, who, suffix = result.split(" ")
    assert thread.startswith("middlewares-helpers-db")
    assert (who, suffix) == ("ada", "!")
    assert thread_pool("helpers-db").stats().running == 0


async def test_full_pool_refuses_at_once() -> None:
    release = threading.Event()
    entered = threading.Event()
    pool = Pool("tiny", max_workers=1, max_queue=0)

    def blocking() -> str:
        entered.set()
        release.wait(10)
        return "done"

    async with anyio.create_task_group() as tasks:
        results: list[str] = []

        async def first() -> None:
            results.append(await run_in_thread(blocking, pool=pool))

        tasks.start_soon(first)
        await wait_for(entered)
        with pytest.raises(PoolFullError, match="pool 'tiny' is full: 1 workers busy"):
            await run_in_thread(square, 2, pool=pool)
        release.set()
    assert results == ["done"]


async def test_cancel_drops_a_queued_call_and_counts_a_running_one() -> None:
    release = threading.Event()
    entered = threading.Event()
    finished = threading.Event()
    calls: list[str] = []
    pool = Pool("cancel", max_workers=1, max_queue=5)

    def running() -> None:
        entered.set()
        release.wait(10)
        calls.append("running finished")
        finished.set()

    def queued() -> None:
        calls.append("queued ran")

    with anyio.CancelScope() as scope:
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(functools.partial(run_in_thread, running, pool=pool))
            await wait_for(entered)
            tasks.start_soon(functools.partial(run_in_thread, queued, pool=pool))
            while pool.stats().queued == 0:  # noqa: ASYNC110 (the queue is a thread's)
                await anyio.sleep(0.001)
            scope.cancel()
    stats = pool.stats()
    assert (stats.running, stats.queued, stats.abandoned) == (1, 0, 1)
    release.set()
    await wait_for(finished)
    while pool.stats().running:  # noqa: ASYNC110
        await anyio.sleep(0.001)
    assert pool.stats().abandoned == 0
    assert calls == ["running finished"]  # the queued call never ran


async def test_exceptions_come_back() -> None:
    def fail() -> None:
        raise ValueError("from the thread")

    with pytest.raises(ValueError, match="from the thread"):
        await run_in_thread(fail)


async def test_run_in_process() -> None:
    assert await run_in_process(square, 12, pool="helpers-cpu") == 144
    assert process_pool("helpers-cpu").processes


async def test_run_in_process_rejects_unpicklable_calls_up_front() -> None:
    with pytest.raises(TypeError, match="needs a picklable function and arguments"):
        await run_in_process(lambda: 1)
    with pytest.raises(TypeError, match="needs a picklable function"):
        await run_in_process(square, threading.Lock())


async def test_run_in_process_needs_a_process_pool() -> None:
    with pytest.raises(TypeError, match="needs a process pool, 'threads' runs threads"):
        await run_in_process(square, 2, pool=Pool("threads"))


def test_named_pools_are_shared_and_sizes_checked() -> None:
    pool = thread_pool("helpers-shared", max_workers=3, max_queue=2)
    assert thread_pool("helpers-shared") is pool
    assert thread_pool("helpers-shared", max_workers=3) is pool
    with pytest.raises(ValueError, match="already exists with max_workers=3, got 4"):
        thread_pool("helpers-shared", max_workers=4)
    with pytest.raises(ValueError, match="max_workers must be a positive integer, got 0"):
        thread_pool("helpers-zero", max_workers=0)
    stats = pool.stats()
    assert (stats.name, stats.max_workers, stats.max_queue) == ("helpers-shared", 3, 2)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        pytest.param({"max_workers": 0}, "max_workers must be a positive integer, got 0", id="w"),
        pytest.param({"max_queue": -1}, "max_queue must be an integer >= 0, got -1", id="q"),
    ],
)
def test_pool_configuration(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        Pool("bad", **kwargs)


def test_shut_down_pool_refuses_and_frees_its_slot() -> None:
    pool = Pool("closing", max_workers=1, max_queue=0)
    pool.shutdown()
    with pytest.raises(RuntimeError, match="shutdown"):
        pool.submit(square, 2)
    assert pool.stats().queued == 0


async def test_context_changes_in_the_thread_stay_there() -> None:
    user.set("caller")

    def change() -> str:
        user.set("thread")
        return user.get()

    assert await run_in_thread(change) == "thread"
    assert user.get() == "caller"  # copied in, not back (as anyio and Starlette do)
