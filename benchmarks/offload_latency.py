"""A tiny request's latency while another endpoint blocks the handler 200 ms per call, with and
without OffloadMiddleware, under uvicorn.

    .venv/bin/python benchmarks/offload_latency.py
    .venv/bin/python benchmarks/offload_latency.py --samples 100

Each variant runs in its own ``uvicorn`` process. Two client threads call ``/block`` (an async
handler that calls ``time.sleep(0.2)``, as a sync driver would) back to back, while one client
sends ``/tiny`` every 10 ms on a kept-alive connection; the table shows the tiny request's
p50 and p99 latency.
"""

from __future__ import annotations

import argparse
import pathlib
import statistics
import sys
import threading
import time

if __package__ in (None, ""):
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from benchmarks.serve import uvicorn_process
from middlewares.offload import OffloadMiddleware


async def block(request: Request) -> PlainTextResponse:
    time.sleep(0.2)  # noqa: ASYNC251 (the accident being measured)
    return PlainTextResponse("blocked")


async def tiny(request: Request) -> PlainTextResponse:
    return PlainTextResponse("tiny")


plain = Starlette(routes=[Route("/block", block), Route("/tiny", tiny)])
offloaded = OffloadMiddleware(plain, max_workers=8)
VARIANTS = {"OffloadMiddleware": "offloaded", "no offload": "plain"}


def measure(url: str, samples: int) -> list[float]:
    stop = threading.Event()

    def blocker() -> None:
        with httpx.Client(timeout=30) as client:
            while not stop.is_set():
                client.get(url + "/block")

    blockers = [threading.Thread(target=blocker) for _ in range(2)]
    latencies: list[float] = []
    with httpx.Client(timeout=30) as client:
        client.get(url + "/tiny")
        for thread in blockers:
            thread.start()
        time.sleep(0.3)
        try:
            for _ in range(samples):
                start = time.perf_counter()
                if client.get(url + "/tiny").text != "tiny":
                    raise RuntimeError("wrong answer")
                latencies.append((time.perf_counter() - start) * 1000)
                time.sleep(0.01)
        finally:
            stop.set()
            for thread in blockers:
                thread.join()
    return latencies


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--samples", type=int, default=300)
    args = parser.parse_args(argv)
    print(f"uvicorn, 1 worker, 2 clients hitting /block, {args.samples} tiny requests")
    print()
    print("| variant | tiny p50 | tiny p99 |")
    print("|---|---:|---:|")
    for label, attribute in VARIANTS.items():
        with uvicorn_process(f"benchmarks.offload_latency:{attribute}") as (url, _):
            latencies = measure(url, args.samples)
        p50 = statistics.median(latencies)
        print(f"| {label} | {p50:.1f} ms | {percentile(latencies, 99):.1f} ms |")


if __name__ == "__main__":
    main()
