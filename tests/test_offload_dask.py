"""run_in_process on a real Dask cluster: a scheduler and two worker processes on 127.0.0.1."""

from __future__ import annotations

import functools
import importlib
import os
import pathlib
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from typing import Any

import anyio
import httpx
import pytest
from distributed import Client, Event
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from examples.offload_dask import create_app, digest
from middlewares.offload import (
    OffloadMiddleware,
    Pool,
    PoolFullError,
    dask_pool,
    pool_full_handler,
    process_pool,
    run_in_process,
)

from .dask_cluster import (
    Cluster,
    connected,
    dask_cluster,
    fail,
    fresh_pool,
    pid,
    square,
    wait_for_release,
)

Serve = Callable[..., AbstractContextManager[str]]


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    with dask_cluster(workers=2) as cluster:
        yield cluster


@pytest.fixture(scope="module")
def client(cluster: Cluster) -> Iterator[Client]:
    with connected(cluster) as client:
        yield client


@pytest.fixture
def pool(client: Client) -> Iterator[Pool]:
    with fresh_pool(client, max_queue=0, timeout=30) as pool:
        yield pool


@pytest.fixture
def single_slot_pool(client: Client) -> Iterator[Pool]:
    """One call at a time, none waiting."""
    with fresh_pool(client, max_workers=1, max_queue=0) as pool:
        yield pool


def event_name() -> str:
    return f"release-{uuid.uuid4().hex}"


def set_event(client: Client, name: str) -> None:
    Event(name, client=client).set()


@pytest.mark.anyio
@pytest.mark.parametrize("where", ["local process pool", "dask"])
async def test_results_and_exceptions_come_back_as_from_a_local_process_pool(
    where: str, pool: Pool
) -> None:
    target = process_pool("dask-compare-local", max_workers=1) if where != "dask" else pool
    assert await run_in_process(square, 12, pool=target) == 144
    with pytest.raises(ValueError, match=r"^from the worker$"):
        await run_in_process(fail, "from the worker", pool=target)
    assert await run_in_process(pid, pool=target) != os.getpid()


@pytest.mark.anyio
async def test_calls_run_on_the_cluster_workers(client: Client, pool: Pool) -> None:
    worker_pids = set(client.run(os.getpid).values())
    assert await run_in_process(pid, pool=pool) in worker_pids
    assert pool.max_workers == 2  # sized from the cluster's worker threads


@pytest.mark.anyio
async def test_unpicklable_call_is_refused_before_it_reaches_the_cluster(pool: Pool) -> None:
    with pytest.raises(TypeError, match="needs a picklable function and arguments"):
        await run_in_process(square, threading.Lock(), pool=pool)
    assert pool.stats().queued == pool.stats().running == 0


@pytest.mark.anyio
async def test_full_dask_pool_refuses_at_once(client: Client, single_slot_pool: Pool) -> None:
    name = event_name()
    results: list[str] = []

    async def first() -> None:
        results.append(await run_in_process(wait_for_release, name, pool=single_slot_pool))

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(first)
        while single_slot_pool.stats().running == 0:  # noqa: ASYNC110 (the pool fills from a thread)
            await anyio.sleep(0.01)
        with pytest.raises(PoolFullError, match="is full: 1 workers busy and 0 calls queued"):
            await run_in_process(square, 2, pool=single_slot_pool)
        set_event(client, name)
    assert results == [f"released {name}"]


@pytest.mark.anyio
async def test_cancelled_await_releases_the_call_on_the_cluster(
    client: Client, single_slot_pool: Pool
) -> None:
    name = event_name()
    with anyio.CancelScope() as scope:
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(
                functools.partial(run_in_process, wait_for_release, name, pool=single_slot_pool)
            )
            while single_slot_pool.stats().running == 0:  # noqa: ASYNC110
                await anyio.sleep(0.01)
            scope.cancel()
    # Dask cancels the task itself, so the pool counts nothing abandoned and takes a new call.
    stats = single_slot_pool.stats()
    assert (stats.running, stats.queued, stats.abandoned) == (0, 0, 0)
    set_event(client, name)
    assert await run_in_process(square, 3, pool=single_slot_pool) == 9


@pytest.mark.anyio
async def test_time_box_abandons_a_call_with_a_clear_error(client: Client) -> None:
    name = event_name()
    with fresh_pool(client, timeout=0.2) as pool:
        with pytest.raises(TimeoutError, match=r"gave no result within 0.2 s; .* abandoned"):
            await run_in_process(wait_for_release, name, pool=pool)
        assert pool.stats().running == 0
    set_event(client, name)


def test_a_pure_dask_executor_is_refused(client: Client) -> None:
    with pytest.raises(ValueError, match=r"made with pure=True .* cancelling one cancels"):
        Pool("pure", processes=True, executor=client.get_executor())
    Pool("impure", processes=True, executor=client.get_executor(pure=False)).shutdown()


@pytest.mark.anyio
async def test_dask_pool_is_named_once_and_leaves_the_client_open(client: Client) -> None:
    pool = dask_pool("dask-named", client)
    assert await run_in_process(square, 5, pool="dask-named") == 25
    with pytest.raises(ValueError, match="pool 'dask-named' already exists; shut it down first"):
        dask_pool("dask-named", client)
    pool.shutdown()
    assert client.status == "running"
    again = dask_pool("dask-named", client, max_workers=1)
    assert process_pool("dask-named") is again
    again.shutdown()


def test_a_cluster_without_workers_needs_max_workers() -> None:
    class NoWorkers:
        def get_executor(self, **kwargs: Any) -> ThreadPoolExecutor:
            raise AssertionError("not reached")

        def nthreads(self) -> dict[str, int]:
            return {}

    with pytest.raises(ValueError, match="no workers yet: pass max_workers"):
        dask_pool("dask-empty", NoWorkers())


def cluster_app(pool: Pool) -> Starlette:
    async def render(request: Request) -> PlainTextResponse:
        name = request.path_params["event"]
        return PlainTextResponse(await run_in_process(wait_for_release, name, pool=pool))

    async def fast(request: Request) -> PlainTextResponse:
        return PlainTextResponse("fast")

    return Starlette(
        routes=[Route("/render/{event}", render), Route("/fast", fast)],
        exception_handlers={PoolFullError: pool_full_handler},
    )


@pytest.mark.server
@pytest.mark.parametrize(
    "offloaded",
    [
        pytest.param(False, id="handler on the server's loop"),
        pytest.param(True, id="handler on an OffloadMiddleware worker"),
    ],
)
def test_cpu_endpoint_on_the_cluster_while_a_fast_one_answers_and_a_full_pool_gives_503(
    client: Client, single_slot_pool: Pool, live_server: Serve, offloaded: bool
) -> None:
    name = event_name()
    app: Any = cluster_app(single_slot_pool)
    threads = Pool("dask-offload", max_workers=4)
    if offloaded:
        app = OffloadMiddleware(app, pool=threads, paths=["/render/*"])
    with live_server(app) as url, ThreadPoolExecutor(1) as browser:
        rendering = browser.submit(httpx.get, f"{url}/render/{name}", timeout=30)
        while single_slot_pool.stats().running == 0:
            time.sleep(0.01)
        for _ in range(5):
            assert httpx.get(url + "/fast", timeout=10).text == "fast"
        refused = httpx.get(f"{url}/render/other", timeout=10)
        assert not rendering.done()
        set_event(client, name)
        assert rendering.result().text == f"released {name}"
    threads.shutdown()
    assert (refused.status_code, refused.headers["retry-after"]) == (503, "1")


@pytest.mark.server
def test_the_example_runs_its_digest_on_the_cluster(cluster: Cluster, live_server: Serve) -> None:
    with live_server(create_app(cluster.address), lifespan="on") as url:
        response = httpx.get(url + "/digest?rounds=10", timeout=30)
        front = httpx.get(url + "/", timeout=10)
    assert response.text == digest(b"seed", 10)
    assert front.status_code == 200


@pytest.mark.server
def test_the_example_starts_and_closes_a_local_cluster_of_its_own(live_server: Serve) -> None:
    with live_server(create_app(None), lifespan="on") as url:
        response = httpx.get(url + "/digest?rounds=1", timeout=60)
    assert response.text == digest(b"seed", 1)


@pytest.mark.anyio
async def test_a_function_the_cluster_cannot_import_fails_at_the_await(
    pool: Pool, tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "only_on_the_web_machine.py").write_text("def double(x):\n    return 2 * x\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    module = importlib.import_module("only_on_the_web_machine")
    assert module.double(2) == 4
    # The scheduler unpickles the call first: it needs the module as much as the workers do.
    with pytest.raises(RuntimeError, match="Error during deserialization of the task graph"):
        await run_in_process(module.double, 2, pool=pool)
