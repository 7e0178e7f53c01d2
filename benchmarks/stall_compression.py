"""How long a concurrent tiny request waits while a 10 MiB JSON body is compressed at default
settings, per coding: CompressionMiddleware beside brotli-asgi, starlette-compress and
Starlette GZip.

    python benchmarks/stall_compression.py

Each cell is the worst delay (ms) a 1 ms probe task saw during the request, median of 5 runs.
"""

from __future__ import annotations

import asyncio
import pathlib
import statistics
import sys

if __package__ in (None, ""):
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

from brotli_asgi import BrotliMiddleware
from starlette.middleware.gzip import GZipMiddleware as StarletteGZip
from starlette_compress import CompressMiddleware

from benchmarks.bench_compression import json_body
from benchmarks.harness import loop_stall, respond_with
from middlewares._types import ASGIApp
from middlewares.compression import CompressionMiddleware
from middlewares.testing import http_scope

RUNS = 5


def variants(app: ASGIApp, coding: str) -> dict[str, ASGIApp]:
    found: dict[str, ASGIApp] = {"middlewares": CompressionMiddleware(app)}
    if coding in ("br", "gzip"):
        # brotli-asgi answers gzip-only clients through Starlette's GZip responder (level 9).
        found["brotli-asgi"] = BrotliMiddleware(app)
    found["starlette-compress"] = CompressMiddleware(app)
    if coding == "gzip":
        found["starlette GZip"] = StarletteGZip(app)
    return found


async def measure() -> list[tuple[str, str, float]]:
    body = json_body(10 * 1024 * 1024)
    app = respond_with(body, [(b"content-type", b"application/json")])
    rows = []
    for coding in ("zstd", "br", "gzip"):
        scope = http_scope(headers={"accept-encoding": coding})
        for label, variant in variants(app, coding).items():
            stalls = [await loop_stall(variant, scope) for _ in range(RUNS)]
            rows.append((coding, label, statistics.median(stalls)))
    return rows


def main() -> None:
    rows = asyncio.run(measure())
    print("| coding | variant | worst loop stall (ms) |")
    print("|---|---|---:|")
    for coding, label, stall in rows:
        print(f"| {coding} | {label} | {stall:.1f} |")


if __name__ == "__main__":
    main()
