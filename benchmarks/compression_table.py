"""Size and speed of each coding per level on this machine, for the docs table that the
default levels were chosen from.

    python benchmarks/compression_table.py

Bodies: a 1 MiB JSON API payload and a 64 KiB HTML page. Speed is single-core MB/s of one
``Codec.compress`` call (the one-shot path the middleware uses), best of 3.
"""

from __future__ import annotations

import pathlib
import sys
import time

if __package__ in (None, ""):
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

from benchmarks.bench_compression import json_body
from middlewares._core.codecs import make_codec

LEVELS = {
    "gzip": [1, 4, 6, 9],
    "br": [1, 3, 4, 5, 6, 9, 11],
    "zstd": [1, 3, 4, 6, 9, 12, 19, 22],
}


def html_body(size: int) -> bytes:
    rows = []
    index = 0
    while sum(map(len, rows)) < size:
        rows.append(
            f'<tr class="row-{index % 7}"><td>{index}</td><td><a href="/items/{index * 7919}">'
            f"Item {index * 31 % 997}</a></td><td>{index * 1.37:.2f} EUR</td></tr>\n"
        )
        index += 1
    page = "<!doctype html><html><body><table>" + "".join(rows) + "</table></body></html>"
    return page.encode()[:size]


def best_time(function: object, body: bytes) -> float:
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        function(body)  # type: ignore[operator]
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    bodies = {"JSON 1 MiB": json_body(1024 * 1024), "HTML 64 KiB": html_body(64 * 1024)}
    print("| coding | level | " + " | ".join(f"{n} ratio | {n} MB/s" for n in bodies) + " |")
    print("|---|---:|" + "---:|---:|" * len(bodies))
    for coding, levels in LEVELS.items():
        for level in levels:
            codec = make_codec(coding, level, argument="level")
            cells = []
            for body in bodies.values():
                size = len(codec.compress(body))
                seconds = best_time(codec.compress, body)
                cells += [f"{len(body) / size:.1f}x", f"{len(body) / seconds / 1e6:.0f}"]
            print(f"| {coding} | {level} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
