"""Offload round trip: a request whose handler sends a trivial call to a worker process, through
a Dask-backed pool (a local cluster of two worker processes), a local process pool, and anyio's
``to_process.run_sync``; the floor makes the call inline.

The cluster and the pools start on the first request of their variant, so other benchmark
groups never pay for them; they are closed when the run exits.
"""

from __future__ import annotations

import atexit
import operator
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import anyio.to_process

from middlewares._types import ASGIApp, Message, Receive, Scope, Send
from middlewares.offload import Pool, dask_pool, run_in_process

from .harness import Case

_pools: dict[str, Pool] = {}


def _start_dask() -> Pool:
    from examples.offload_dask import connect

    client, cluster = connect(None)  # a local cluster of two worker processes
    pool = dask_pool("bench-dask", client)

    def close() -> None:
        pool.shutdown(wait=False)
        client.close()
        if cluster is not None:
            cluster.close()

    atexit.register(close)
    return pool


def _start_local() -> Pool:
    pool = Pool("bench-local", max_workers=2, processes=True)
    atexit.register(pool.shutdown)
    return pool


async def _pool(name: str, start: Callable[[], Pool]) -> Pool:
    if name not in _pools:
        _pools[name] = await anyio.to_thread.run_sync(start)
    return _pools[name]


def _app(call: Callable[[], Awaitable[int]]) -> ASGIApp:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        body = str(await call()).encode()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})

    return app


async def _via_dask() -> int:
    return await run_in_process(operator.mul, 6, 7, pool=await _pool("dask", _start_dask))


async def _via_local() -> int:
    return await run_in_process(operator.mul, 6, 7, pool=await _pool("local", _start_local))


async def _via_anyio() -> int:
    return await anyio.to_process.run_sync(operator.mul, 6, 7)


async def _inline() -> int:
    return operator.mul(6, 7)


def _check(label: str, messages: list[Message]) -> None:
    if messages[1]["body"] != b"42":
        raise AssertionError(f"{label} answered {messages[1]}")


def cases() -> list[Case]:
    variants: dict[str, Any] = {
        "middlewares, Dask-backed pool": _app(_via_dask),
        "middlewares, local process pool": _app(_via_local),
        "anyio.to_process.run_sync": _app(_via_anyio),
        "inline call (floor)": _app(_inline),
    }
    return [
        Case(
            "offload-dask",
            "trivial call in a worker process",
            variants,
            baseline="middlewares, local process pool",
            check=_check,
        )
    ]
