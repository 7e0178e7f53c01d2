"""End to end under uvicorn: WSGI hello-world requests/s (wrk) and peak server RSS growth while
100 MiB stream down and up, this library's WSGIMiddleware against a2wsgi.

    .venv/bin/python benchmarks/wsgi_e2e.py            # 3 rounds, variants interleaved
    .venv/bin/python benchmarks/wsgi_e2e.py --rounds 1 --duration 3

Each round starts a fresh ``uvicorn`` process per variant (one worker),
runs ``wrk -t1 -c32`` against ``/``, then streams 100 MiB from ``/download`` and 100 MiB to
``/upload`` while sampling the server's RSS every 5 ms. The table shows medians over rounds.
"""

from __future__ import annotations

import argparse
import pathlib
import statistics
import sys
import threading
from collections.abc import Iterator
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

import httpx
import psutil
from a2wsgi import WSGIMiddleware as A2WSGIMiddleware

from benchmarks.serve import uvicorn_process, wrk
from middlewares.wsgi import WSGIMiddleware

MiB = 1 << 20
TOTAL = 100 * MiB
CHUNK = b"x" * 65536


def wsgi_app(environ: dict[str, Any], start_response: Any) -> Any:
    path = environ["PATH_INFO"]
    if path == "/download":
        start_response("200 OK", [("Content-Length", str(TOTAL))])
        return (CHUNK for _ in range(TOTAL // len(CHUNK)))
    if path == "/upload":
        size = 0
        while part := environ["wsgi.input"].read(65536):
            size += len(part)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [str(size).encode()]
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "13")])
    return [b"Hello, world!"]


ours = WSGIMiddleware(wsgi_app)
a2wsgi = A2WSGIMiddleware(wsgi_app)
VARIANTS = {"middlewares WSGIMiddleware": "ours", "a2wsgi 1.10": "a2wsgi"}


def peak_rss_growth(process: psutil.Process, transfer: Any) -> float:
    """Run ``transfer()`` while sampling the server's RSS; return the peak growth in MiB."""
    before = process.memory_info().rss
    peak = before
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, process.memory_info().rss)
            done.wait(0.005)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        transfer()
    finally:
        done.set()
        sampler.join()
    return (peak - before) / MiB


def download(url: str) -> None:
    received = 0
    with httpx.stream("GET", url + "/download", timeout=60) as response:
        for part in response.iter_raw(65536):
            received += len(part)
    if received != TOTAL:
        raise RuntimeError(f"downloaded {received} bytes")


def upload(url: str) -> None:
    def body() -> Iterator[bytes]:
        for _ in range(TOTAL // len(CHUNK)):
            yield CHUNK

    response = httpx.post(
        url + "/upload", content=body(), headers={"content-length": str(TOTAL)}, timeout=60
    )
    if response.text != str(TOTAL):
        raise RuntimeError(f"upload answered {response.text!r}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=5, help="seconds of wrk per round")
    args = parser.parse_args(argv)
    results: dict[str, dict[str, list[float]]] = {
        label: {"rps": [], "down": [], "up": []} for label in VARIANTS
    }
    for _ in range(args.rounds):
        for label, attribute in VARIANTS.items():
            target = f"benchmarks.wsgi_e2e:{attribute}"
            with uvicorn_process(target, "--lifespan", "off") as (url, popen):
                process = psutil.Process(popen.pid)
                httpx.get(url + "/")  # warm up
                results[label]["rps"].append(wrk(url + "/", seconds=args.duration))
                results[label]["down"].append(peak_rss_growth(process, lambda: download(url)))
                results[label]["up"].append(peak_rss_growth(process, lambda: upload(url)))
    baseline = statistics.median(results["a2wsgi 1.10"]["rps"])
    print(f"uvicorn, 1 worker, wrk -t1 -c32 -d{args.duration}s, median of {args.rounds} rounds")
    print()
    print(
        "| variant | hello world req/s | ratio "
        "| RSS growth, 100 MiB down | RSS growth, 100 MiB up |"
    )
    print("|---|---:|---:|---:|---:|")
    for label, values in results.items():
        rps = statistics.median(values["rps"])
        down = statistics.median(values["down"])
        up = statistics.median(values["up"])
        print(f"| {label} | {rps:,.0f} | {rps / baseline:.2f}x | {down:.1f} MiB | {up:.1f} MiB |")


if __name__ == "__main__":
    main()
