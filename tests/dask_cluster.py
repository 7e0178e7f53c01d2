"""A real Dask cluster for tests: a scheduler and worker processes on 127.0.0.1, started with
the ``dask scheduler`` / ``dask worker`` commands so that tests can kill them; and the functions
the workers run (they import this module from the checkout)."""

from __future__ import annotations

import contextlib
import os
import pathlib
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from distributed import Client

from middlewares.offload import Pool, dask_pool

from .servers import free_port

ROOT = pathlib.Path(__file__).resolve().parent.parent


@dataclass
class Cluster:
    address: str
    scheduler: subprocess.Popen[bytes]
    workers: list[subprocess.Popen[bytes]]


def _start(args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


@contextlib.contextmanager
def dask_cluster(workers: int = 2, **config: str) -> Iterator[Cluster]:
    """Start a scheduler and ``workers`` single-threaded worker processes (no nanny, so a
    killed worker stays dead); ``config`` sets Dask options as ``DASK_...`` variables."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), **config}
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    scheduler = _start(
        [
            "distributed.cli.dask_scheduler",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--no-dashboard",
        ],
        env,
    )
    cluster = Cluster(address, scheduler, [])
    try:
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
                break
            if scheduler.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("dask scheduler did not start")
            time.sleep(0.05)
        cluster.workers = [
            _start(
                [
                    *("distributed.cli.dask_worker", address, "--nthreads", "1", "--no-nanny"),
                    *("--host", "127.0.0.1", "--no-dashboard"),
                ],
                env,
            )
            for _ in range(workers)
        ]
        yield cluster
    finally:
        for process in [*cluster.workers, scheduler]:
            process.terminate()
        for process in [*cluster.workers, scheduler]:
            _reap(process)


def _reap(process: subprocess.Popen[bytes]) -> None:
    try:
        process.wait(5)
    except subprocess.TimeoutExpired:  # a worker still closing gracefully
        process.kill()
        process.wait()


@contextlib.contextmanager
def connected(cluster: Cluster, *, timeout: float = 30) -> Iterator[Client]:
    """A client of ``cluster`` once every worker joined; ``timeout`` also bounds its attempts
    to reconnect to a stopped scheduler."""
    with Client(cluster.address, timeout=timeout) as client:
        client.wait_for_workers(len(cluster.workers), timeout=30)
        yield client


@contextlib.contextmanager
def fresh_pool(client: Client, **options: Any) -> Iterator[Pool]:
    """A Dask-backed pool under a name of its own, shut down afterwards."""
    pool = dask_pool(f"dask-{uuid.uuid4().hex[:8]}", client, **options)
    try:
        yield pool
    finally:
        pool.shutdown(wait=False)


# --- what the workers run


def square(x: int) -> int:
    return x * x


def pid() -> int:
    return os.getpid()


def fail(message: str) -> None:
    raise ValueError(message)


def wait_for_release(name: str) -> str:
    """Block until the test sets the Dask ``Event`` called ``name``."""
    from distributed import Event

    if not Event(name).wait(30):
        raise RuntimeError(f"event {name!r} was never set")
    return f"released {name}"


def die() -> None:
    """The worker process dies mid-call, as one the kernel's OOM killer picks does."""
    os.kill(os.getpid(), signal.SIGKILL)


def die_once(name: str) -> int:
    """Kill the first worker that runs it; on the next one, return that worker's pid."""
    from distributed import Event

    first = Event(name)
    if not first.is_set():
        first.set()
        die()
    return os.getpid()
