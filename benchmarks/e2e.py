"""End-to-end requests/s: uvicorn on 127.0.0.1 serving each app, loaded by wrk.

    python benchmarks/e2e.py                         # every app in benchmarks/e2e_apps.py
    python benchmarks/e2e.py bare pass_through       # only these
    python benchmarks/e2e.py --path /json --header 'Accept-Encoding: gzip'

wrk comes from Debian's packages (``apt-get install wrk``). Each app runs in its own uvicorn
process (one worker, httptools, no access log) pinned beside wrk on this machine's cores; apps
are measured in turn, each for ``--seconds`` after a one-second warm-up, and the table gives
requests/s and the ratio to the first app named.
"""

from __future__ import annotations

import argparse
import pathlib
import re
import shutil
import socket
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("uvicorn exited early")
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("uvicorn did not start")


def measure(app: str, *, path: str, headers: list[str], seconds: int, connections: int) -> float:
    """Serve ``benchmarks.e2e_apps:<app>`` and return wrk's requests/s."""
    port = _free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            f"benchmarks.e2e_apps:{app}",
            "--port",
            str(port),
            "--host",
            "127.0.0.1",
            "--no-access-log",
            "--log-level",
            "warning",
            "--http",
            "httptools",
            "--lifespan",
            "off",
        ],
        cwd=ROOT,
    )
    try:
        _wait_for(port, server)
        url = f"http://127.0.0.1:{port}{path}"
        header_args = [arg for h in headers for arg in ("-H", h)]
        wrk = ["wrk", "-t1", f"-c{connections}", *header_args, url]
        subprocess.run([*wrk[:1], "-d1s", *wrk[1:]], check=True, capture_output=True)
        out = subprocess.run(
            [*wrk[:1], f"-d{seconds}s", *wrk[1:]], check=True, capture_output=True, text=True
        ).stdout
        errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
        if errors:
            raise RuntimeError(f"{app}: {errors.group(1)} error responses")
        match = re.search(r"Requests/sec:\s+([\d.]+)", out)
        if match is None:
            raise RuntimeError(f"unexpected wrk output:\n{out}")
        return float(match.group(1))
    finally:
        server.terminate()
        server.wait(10)


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
    first = next(iter(results.values()))
    print(f"GET {args.path} {' '.join(args.header)}".rstrip())
    print()
    print("| app | requests/s | ratio |")
    print("|---|---:|---:|")
    for app, rate in results.items():
        print(f"| {app} | {rate:,.0f} | {rate / first:.2f}x |")


if __name__ == "__main__":
    main()
