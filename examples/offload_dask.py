"""Run CPU-bound work on a Dask cluster through the same bounded pool as a local process pool.

Start a cluster (here on one machine; on several, run the workers there), then the app:

    export PYTHONPATH=$PWD    # the scheduler and the workers import examples.offload_dask
    dask scheduler --host 127.0.0.1 --port 8786 &
    dask worker tcp://127.0.0.1:8786 --nthreads 1 &
    dask worker tcp://127.0.0.1:8786 --nthreads 1 &
    DASK_SCHEDULER=tcp://127.0.0.1:8786 uvicorn examples.offload_dask:app

Without ``DASK_SCHEDULER`` the app starts a local cluster of two worker processes. Then:

    curl 'http://127.0.0.1:8000/digest?rounds=200000'   # hashed on a Dask worker
    curl http://127.0.0.1:8000/                          # answers while workers are busy

The scheduler and the workers import ``examples.offload_dask`` to run ``digest``: on other
machines, deploy the same code to them.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import AsyncIterator
from concurrent.futures import BrokenExecutor

import anyio
from distributed import Client, LocalCluster
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from middlewares.offload import PoolFullError, dask_pool, pool_full_handler, run_in_process


def digest(data: bytes, rounds: int) -> str:
    for _ in range(rounds):
        data = hashlib.sha256(data).digest()
    return data.hex()


async def home(request: Request) -> PlainTextResponse:
    return PlainTextResponse("ok")


async def cpu(request: Request) -> PlainTextResponse:
    rounds = min(int(request.query_params.get("rounds", "100000")), 10_000_000)
    return PlainTextResponse(await run_in_process(digest, b"seed", rounds, pool="cluster"))


async def too_slow(request: Request, exc: Exception) -> Response:
    return PlainTextResponse("the cluster did not answer in time", status_code=504)


def connect(scheduler: str | None) -> tuple[Client, LocalCluster | None]:
    if scheduler is not None:
        return Client(scheduler), None
    # A free port for the scheduler's HTTP server: 8787 may be taken by another cluster.
    cluster = LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address="127.0.0.1:0",
    )
    return Client(cluster), cluster


def create_app(scheduler: str | None) -> Starlette:
    """The app, using the Dask scheduler at ``scheduler`` (or a local cluster if None)."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # The client runs its own event loop in a thread, whatever the server runs on.
        client, cluster = await anyio.to_thread.run_sync(connect, scheduler)
        await anyio.to_thread.run_sync(client.wait_for_workers, 1)
        # At most the cluster's threads busy and 8 calls waiting; a call gets 30 s at most.
        pool = dask_pool("cluster", client, max_queue=8, timeout=30)
        try:
            yield
        finally:
            pool.shutdown(wait=False)
            await anyio.to_thread.run_sync(client.close)
            if cluster is not None:
                await anyio.to_thread.run_sync(cluster.close)

    return Starlette(
        routes=[Route("/", home), Route("/digest", cpu)],
        lifespan=lifespan,
        # A full pool, or a worker or scheduler lost (BrokenExecutor): both pass, so both get
        # 503 with Retry-After, as OffloadMiddleware answers a full pool.
        exception_handlers={
            PoolFullError: pool_full_handler,
            BrokenExecutor: pool_full_handler,
            TimeoutError: too_slow,
        },
    )


app = create_app(os.environ.get("DASK_SCHEDULER"))
