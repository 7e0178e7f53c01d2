"""End-to-end requests/s: uvicorn on 127.0.0.1 serving each app, loaded by wrk.

    python benchmarks/e2e.py                         # every app in benchmarks/e2e_apps.py
    python benchmarks/e2e.py bare pass_through       # only these
    python benchmarks/e2e.py --path /json --header 'Accept-Encoding: gzip'
    python benchmarks/e2e.py bare mypackage.asgi:app     # any importable app, beside these

wrk comes from Debian's packages (``apt-get install wrk``). Each app runs in its own uvicorn
process (one worker, httptools, no access log) beside wrk on this machine's two cores; apps
are measured in turn, each for ``--seconds`` after a one-second warm-up, and the table gives
requests/s and the ratio to the first app named.
"""

from __future__ import annotations

import argparse
import pathlib
import shutil
import sys
import urllib.request

if __package__ in (None, ""):
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

from benchmarks.serve import uvicorn_process, wrk


def sample(url: str, headers: list[str]) -> tuple[str, int]:
    """One request as wrk sends it: the response's Content-Encoding and body size on the wire."""
    request = urllib.request.Request(url, headers=dict(h.split(":", 1) for h in headers))
    with urllib.request.urlopen(request) as response:
        return response.headers.get("content-encoding", "identity").strip(), len(response.read())


def measure(
    app: str, *, path: str, headers: list[str], seconds: int, connections: int
) -> tuple[float, str, int]:
    """Serve ``benchmarks.e2e_apps:<app>``, or ``app`` itself when it names a
    ``module:attribute``; return wrk's requests/s after a warm-up, with the encoding and size of
    the response, so that stacks doing different work are not compared."""
    target = app if ":" in app else f"benchmarks.e2e_apps:{app}"
    with uvicorn_process(
        target, "--http", "httptools", "--lifespan", "off", "--no-proxy-headers"
    ) as (url, _):
        encoding, size = sample(url + path, headers)
        wrk(url + path, seconds=1, connections=connections, headers=headers)
        rate = wrk(url + path, seconds=seconds, connections=connections, headers=headers)
        return rate, encoding, size


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("apps", nargs="*", default=["bare", "pass_through"])
    parser.add_argument("--path", default="/")
    parser.add_argument("--header", action="append", default=[])
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        sys.exit("wrk is missing: apt-get install wrk")
    results = {
        app: measure(
            app,
            path=args.path,
            headers=args.header,
            seconds=args.seconds,
            connections=args.connections,
        )
        for app in args.apps
    }
    first = next(iter(results.values()))[0]
    print(f"GET {args.path} {' '.join(args.header)}".rstrip())
    print()
    print("| app | requests/s | ratio | encoding | bytes |")
    print("|---|---:|---:|---|---:|")
    for app, (rate, encoding, size) in results.items():
        print(f"| {app} | {rate:,.0f} | {rate / first:.2f}x | {encoding} | {size} |")


if __name__ == "__main__":
    main()
