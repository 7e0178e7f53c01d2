"""The access log and OpenTelemetry through a real uvicorn on 127.0.0.1: one line per request,
a vanished client logged as 499, and the request id and trace id on every line."""

from __future__ import annotations

import json
import logging
import os
import pathlib
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from middlewares.access_log import AccessLogMiddleware
from middlewares.otel import OpenTelemetryMiddleware, trace_request_id
from middlewares.request_id import RequestIDMiddleware

from .logs import collected
from .otel_support import Telemetry
from .servers import free_port

pytestmark = pytest.mark.server

LOGGER = logging.getLogger("tests.observe.live")
LOGGER.setLevel(logging.INFO)
LOGGER.propagate = False

Serve = Callable[..., AbstractContextManager[str]]


async def item(request: Request) -> PlainTextResponse:
    return PlainTextResponse(f"item {request.path_params['item_id']}")


async def wait_for_disconnect(request: Request) -> PlainTextResponse:
    while (await request.receive())["type"] != "http.disconnect":
        pass
    return PlainTextResponse("never sent")


def stack(telemetry: Telemetry) -> Any:
    app = Starlette(routes=[Route("/items/{item_id}", item), Route("/wait", wait_for_disconnect)])
    return AccessLogMiddleware(
        OpenTelemetryMiddleware(
            RequestIDMiddleware(app, generator=trace_request_id),
            tracer_provider=telemetry.tracer_provider,
            meter_provider=telemetry.meter_provider,
        ),
        logger=LOGGER,
    )


def wait_until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 10
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("the access line never came")
        time.sleep(0.01)


def test_exactly_one_line_per_request_with_request_and_trace_ids(live_server: Serve) -> None:
    telemetry = Telemetry()
    uvicorn_access = logging.getLogger("uvicorn.access")
    with (
        collected(LOGGER) as records,
        collected(uvicorn_access) as uvicorn_records,
        live_server(stack(telemetry), access_log=False, log_level="info") as url,
        httpx.Client(base_url=url) as http,
    ):
        responses = [http.get(f"/items/{n}") for n in range(5)]
        wait_until(lambda: len(records) == 5)
    assert uvicorn_records == []
    lines = [json.loads(record.getMessage()) for record in records]
    trace_ids = {format(span.context.trace_id, "032x") for span in telemetry.spans}
    for response, line in zip(responses, lines, strict=True):
        assert line["request_id"] == line["trace_id"] == response.headers["x-request-id"]
        assert line["route"] == "/items/{item_id}"
        assert line["bytes_sent"] == len(response.content)
        assert line["client"] == "127.0.0.1"
    assert {line["trace_id"] for line in lines} == trace_ids
    assert len(trace_ids) == 5


def test_a_client_that_leaves_is_logged_once_as_499(live_server: Serve) -> None:
    telemetry = Telemetry()
    with collected(LOGGER) as records, live_server(stack(telemetry)) as url:
        port = int(url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.sendall(b"GET /wait HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            time.sleep(0.2)  # let the request reach the app before the client goes
        wait_until(lambda: len(records) == 1)
        time.sleep(0.1)  # a second line would have arrived by now
    (line,) = [json.loads(record.getMessage()) for record in records]
    assert (line["status"], line["outcome"], line["path"]) == (499, "disconnect", "/wait")
    assert line["trace_id"] == format(telemetry.spans[0].context.trace_id, "032x")


@pytest.mark.parametrize(
    ("flags", "lines_per_request", "warned"),
    [
        pytest.param(["--no-access-log"], 1, False, id="with --no-access-log: one line"),
        pytest.param([], 2, True, id="without it: uvicorn's line too, and a warning"),
    ],
)
def test_trap_57_uvicorn_command_line(
    flags: list[str], lines_per_request: int, warned: bool
) -> None:
    root = pathlib.Path(__file__).parent.parent
    port = free_port()
    command = [sys.executable, "-m", "uvicorn", "examples.access_log_stdlib:app"]
    command += ["--port", str(port), "--log-level", "info", *flags]
    environment = {**os.environ, "PYTHONPATH": str(root)}
    with subprocess.Popen(
        command, cwd=root, env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    ) as process:
        try:
            wait_until(lambda: _answers(port))
            for n in range(3):
                httpx.get(f"http://127.0.0.1:{port}/users/{n}")
        finally:
            process.terminate()
        output = process.communicate(timeout=10)[0].decode()
    ours = [line for line in output.splitlines() if line.startswith('{"time"')]
    theirs = [line for line in output.splitlines() if "GET /users/" in line and "INFO" in line]
    assert len(ours) == 3
    assert len(ours) + len(theirs) == 3 * lines_per_request
    assert ("--no-access-log" in output) == warned


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False
