"""Rate limiting on Redis, end to end: RateLimitMiddleware + RedisRateLimitStore beside slowapi
with its Redis storage (headers enabled, as both then send rate-limit headers).

    python benchmarks/e2e_rate_limit_redis.py            # 5 s per row, 32 connections
    python benchmarks/e2e_rate_limit_redis.py --duration 10 --connections 64

Three tables, all against a throw-away redis-server on 127.0.0.1:

- Redis round trips per request, counted in-process at redis-py's socket writes.
- Requests/s of a Starlette app served by one uvicorn worker and loaded by wrk; the limit is
  high enough that nothing is refused, so both variants check and count every request.
- The worst loop stall during one request while Redis answers in 100 ms (a proxy in a thread
  delays every command): how long any other request on the same worker waits.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import pathlib
import socket
import statistics
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

import redis.asyncio.connection
import redis.connection
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from benchmarks.harness import _server_callables, loop_stall
from benchmarks.serve import uvicorn_process, wrk
from middlewares.testing import http_scope
from tests.servers import free_port, redis_server

VARIANTS = ("middlewares", "slowapi")
RATE = "100000000/minute"  # never reached: every request is checked and counted
STALL_RUNS = 5


async def home(request: Request) -> PlainTextResponse:
    return PlainTextResponse("ok")


def build(variant: str, url: str) -> Starlette:
    if variant == "middlewares":
        from middlewares.rate_limit import RateLimitMiddleware
        from middlewares.stores import RedisRateLimitStore

        # A time box longer than the 100 ms Redis of the stall table: every request waits for
        # its answer instead of failing open, so both variants do the same work.
        limiter = Middleware(
            RateLimitMiddleware,
            application_limits=[RATE],
            store=RedisRateLimitStore(url),
            store_timeout=1.0,
        )
        return Starlette(routes=[Route("/", home)], middleware=[limiter])
    from slowapi import Limiter
    from slowapi.middleware import SlowAPIASGIMiddleware
    from slowapi.util import get_remote_address

    app = Starlette(routes=[Route("/", home)], middleware=[Middleware(SlowAPIASGIMiddleware)])
    app.state.limiter = Limiter(
        key_func=get_remote_address, default_limits=[RATE], storage_uri=url, headers_enabled=True
    )
    return app


def make_app() -> Starlette:
    """The app uvicorn serves (``--factory``); the variant and Redis URL come from the env."""
    return build(os.environ["BENCH_VARIANT"], os.environ["BENCH_REDIS_URL"])


async def call(app: Any) -> None:
    receive, send = _server_callables(b"", None)
    await app(http_scope("GET", "/", client=("198.51.100.7", 1)), receive, send)


@contextlib.contextmanager
def counting_round_trips() -> Iterator[list[int]]:
    """Count every command (or pipeline) redis-py writes to a socket, sync and asyncio."""
    count = [0]
    patched: list[tuple[Any, Callable[..., Any]]] = []
    for cls in (redis.connection.Connection, redis.asyncio.connection.Connection):
        original = cls.send_packed_command

        def counted(self: Any, *args: Any, _original: Any = original, **kwargs: Any) -> Any:
            count[0] += 1
            return _original(self, *args, **kwargs)

        cls.send_packed_command = counted  # type: ignore[method-assign]
        patched.append((cls, original))
    try:
        yield count
    finally:
        for cls, original in patched:
            cls.send_packed_command = original  # type: ignore[method-assign]


def round_trips(variant: str, url: str, requests: int = 200) -> float:
    async def run() -> float:
        app = build(variant, url)
        for _ in range(5):  # connect, load scripts
            await call(app)
        with counting_round_trips() as count:
            for _ in range(requests):
                await call(app)
        return count[0] / requests

    return asyncio.run(run())


@contextlib.contextmanager
def slow_proxy(target_port: int, delay: float) -> Iterator[str]:
    """A TCP proxy in threads that holds every client-to-Redis chunk ``delay`` seconds."""
    listener = socket.create_server(("127.0.0.1", free_port()))
    port = listener.getsockname()[1]
    stop = threading.Event()

    def pipe(source: socket.socket, target: socket.socket, wait: float) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                if wait:
                    time.sleep(wait)
                target.sendall(data)
        with contextlib.suppress(OSError):
            target.shutdown(socket.SHUT_WR)

    def accept() -> None:
        while not stop.is_set():
            with contextlib.suppress(OSError):
                client, _ = listener.accept()
                upstream = socket.create_connection(("127.0.0.1", target_port))
                for args in ((client, upstream, delay), (upstream, client, 0.0)):
                    threading.Thread(target=pipe, args=args, daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        stop.set()
        listener.close()


def stall(variant: str, url: str) -> float:
    async def run() -> float:
        app = build(variant, url)
        await call(app)  # connect and load scripts before measuring
        scope = http_scope("GET", "/", client=("198.51.100.7", 1))
        return statistics.median([await loop_stall(app, scope) for _ in range(STALL_RUNS)])

    return asyncio.run(run())


def throughput(variant: str, url: str, duration: int, connections: int) -> float:
    env = {"BENCH_VARIANT": variant, "BENCH_REDIS_URL": url}
    target = "benchmarks.e2e_rate_limit_redis:make_app"
    with uvicorn_process(target, "--factory", "--http", "httptools", env=env) as (base, _):
        wrk(base + "/", seconds=1, connections=connections)
        return wrk(base + "/", seconds=duration, connections=connections, threads=2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--duration", type=int, default=5)
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args()
    with redis_server() as (url, _):
        port = int(url.rsplit(":", 1)[1].split("/")[0])
        trips = {v: round_trips(v, url) for v in VARIANTS}
        rates = {v: throughput(v, url, args.duration, args.connections) for v in VARIANTS}
        with slow_proxy(port, 0.1) as slow_url:
            stalls = {v: stall(v, slow_url) for v in VARIANTS}
    base = rates["slowapi"]
    print(f"uvicorn (1 worker) + wrk -t2 -c{args.connections} -d{args.duration}s, real Redis")
    print()
    print(
        "| variant | Redis round trips / request | requests/s | ratio | worst loop stall, Redis"
        " at 100 ms (ms) |"
    )
    print("|---|---:|---:|---:|---:|")
    for v in VARIANTS:
        print(
            f"| {v} | {trips[v]:.2f} | {rates[v]:,.0f} | {rates[v] / base:.2f}x | {stalls[v]:.1f} |"
        )


if __name__ == "__main__":
    main()
