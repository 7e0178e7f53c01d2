"""BodyLimitMiddleware through a real uvicorn on 127.0.0.1: no 100 Continue for a refused
upload, the connection closed after a 413 so leftover bytes are never parsed as a request,
chunked and slow uploads, and flat memory while a client pushes 1 GB at a 1 MiB limit."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from middlewares._types import Receive, Scope, Send
from middlewares.body_limit import BodyLimitMiddleware

from .servers import serve

pytestmark = pytest.mark.server

ROOT = Path(__file__).resolve().parent.parent
LIMIT = 1024 * 1024
PATHS: list[str] = []
READ: list[int] = []  # the body bytes the app had read, after each message


async def echo_length(scope: Scope, receive: Receive, send: Send) -> None:
    """Records the path, reads the whole body, answers with its length."""
    PATHS.append(scope["path"])
    size = 0
    more = True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        size += len(message.get("body", b""))
        READ.append(size)
        more = message.get("more_body", False)
    body = str(size).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


@pytest.fixture(scope="module", params=["httptools", "h11"])
def url(request: pytest.FixtureRequest) -> Iterator[str]:
    app = BodyLimitMiddleware(echo_length, LIMIT, body_timeout=0.5)
    with serve(app, http=request.param) as base:
        yield base


def connect(url: str) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=10)


def read_all(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    data = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            return data
        if not chunk:
            return data
        data += chunk


def test_trap38_expect_100_continue_with_an_oversized_length_gets_413_and_no_100(url: str) -> None:
    with connect(url) as sock:
        sock.sendall(
            b"POST /upload HTTP/1.1\r\nHost: test\r\nContent-Length: 10485760\r\n"
            b"Expect: 100-continue\r\n\r\n"
        )
        reply = read_all(sock)  # the server closes: the 10 MiB are never sent
    assert reply.startswith(b"HTTP/1.1 413 ")
    assert b"100 Continue" not in reply
    assert b"connection: close" in reply.lower()
    assert b'"max_body_size":1048576' in reply


def test_trap45_bytes_left_after_a_413_are_never_parsed_as_a_request(url: str) -> None:
    PATHS.clear()
    smuggled = b"GET /smuggled HTTP/1.1\r\nHost: test\r\n\r\n"
    with connect(url) as sock:
        sock.sendall(
            b"POST /upload HTTP/1.1\r\nHost: test\r\nContent-Length: 2000000\r\n\r\n" + smuggled
        )
        reply = read_all(sock)
    assert reply.count(b"HTTP/1.1 ") == 1
    assert reply.startswith(b"HTTP/1.1 413 ")
    assert PATHS == []


def test_trap35_chunked_upload_past_the_limit_gets_413_and_the_app_reads_no_more(
    url: str,
) -> None:
    READ.clear()
    with connect(url) as sock:
        sock.sendall(b"POST /upload HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n")
        reply: list[bytes] = []
        reader = threading.Thread(target=lambda: reply.append(read_all(sock)))
        reader.start()
        chunk = b"%x\r\n%s\r\n" % (64 * 1024, b"x" * 64 * 1024)
        try:
            for _ in range(160):  # 10 MiB
                sock.sendall(chunk)
        except OSError:
            pass  # the server closed the connection after its 413
        reader.join(10)
    assert reply[0].startswith(b"HTTP/1.1 413 ")
    assert READ
    assert max(READ) <= LIMIT


def test_chunked_upload_within_the_limit_passes(url: str) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(8):
            yield b"x" * 64 * 1024

    response = httpx.post(url + "/upload", content=chunks(), timeout=10)
    assert response.status_code == 200
    assert response.text == str(8 * 64 * 1024)


def test_slow_upload_gets_408_once_the_body_stalls(url: str) -> None:
    with connect(url) as sock:
        sock.sendall(
            b"POST /upload HTTP/1.1\r\nHost: test\r\nContent-Length: 100\r\n\r\n0123456789"
        )
        reply = read_all(sock)  # nothing more is sent: body_timeout answers
    assert reply.startswith(b"HTTP/1.1 408 ")
    assert b"connection: close" in reply.lower()


# A client in its own process, so that only the server's memory is in this one: it pushes up
# to 1 GB as a chunked body in 256 KiB chunks until the server closes, then prints the status
# line it got and how many bytes it managed to send.
CLIENT = """
import socket, sys, threading
host, port = sys.argv[1], int(sys.argv[2])
sock = socket.create_connection((host, port), timeout=30)
sock.sendall(b"POST /upload HTTP/1.1\\r\\nHost: t\\r\\nTransfer-Encoding: chunked\\r\\n\\r\\n")
reply = []
def read():
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except OSError:
        pass
    reply.append(data)
reader = threading.Thread(target=read)
reader.start()
chunk = b"%x\\r\\n%s\\r\\n" % (256 * 1024, b"x" * 256 * 1024)
sent = 0
try:
    while sent < 1024 ** 3:
        sock.sendall(chunk)
        sent += 256 * 1024
except OSError:
    pass
reader.join(30)
print(reply[0].split(b"\\r\\n")[0].decode(), sent)
"""


def test_trap36_memory_stays_flat_while_a_client_pushes_1_gb_at_a_1_mib_limit() -> None:
    # One server for this test (not the shared fixture): its memory is what is measured.
    with serve(BodyLimitMiddleware(echo_length, LIMIT)) as base:
        host, port = base.removeprefix("http://").split(":")
        process = psutil.Process()
        baseline = process.memory_info().rss
        peak = baseline
        with subprocess.Popen(
            [sys.executable, "-c", CLIENT, host, port],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        ) as client:
            while client.poll() is None:
                peak = max(peak, process.memory_info().rss)
                time.sleep(0.005)
            output = client.stdout.read() if client.stdout else ""
    status, _, sent = output.strip().rpartition(" ")
    assert status.startswith("HTTP/1.1 413")
    assert int(sent) < 1024**3  # cut short, not read to the end
    assert peak - baseline < 32 * 1024 * 1024, (output, peak - baseline)
