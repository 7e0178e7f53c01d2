"""Helpers for the end-to-end benchmarks: a uvicorn process on 127.0.0.1 and a wrk run."""

from __future__ import annotations

import contextlib
import os
import pathlib
import re
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence

from tests.servers import free_port

ROOT = pathlib.Path(__file__).resolve().parent.parent


@contextlib.contextmanager
def uvicorn_process(
    target: str, *options: str, env: dict[str, str] | None = None
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """Serve ``target`` (``"module:attribute"``) with one uvicorn worker on a free port of
    127.0.0.1, without access log; yield the base URL and the process."""
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            target,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--no-access-log",
            *options,
        ],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
                break
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"uvicorn did not start for {target}")
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}", process
    finally:
        process.terminate()
        process.wait(10)


def wrk(
    url: str,
    *,
    seconds: int,
    connections: int = 32,
    threads: int = 1,
    method: str = "GET",
    headers: Sequence[str] = (),
) -> float:
    """Load ``url`` with wrk for ``seconds`` and return its requests/s; any non-2xx/3xx
    response is an error, since a fast error page is no result."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(f'wrk.method = "{method}"\n')
        for header in headers:
            name, _, value = header.partition(":")
            script.write(f'wrk.headers["{name.strip()}"] = "{value.strip()}"\n')
    try:
        output = subprocess.run(
            ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "-s", script.name, url],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    finally:
        os.unlink(script.name)
    if "Non-2xx or 3xx responses" in output:
        raise RuntimeError(f"wrk saw error responses:\n{output}")
    match = re.search(r"Requests/sec:\s+([\d.]+)", output)
    if match is None:
        raise RuntimeError(f"unexpected wrk output:\n{output}")
    return float(match.group(1))
