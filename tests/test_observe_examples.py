"""The access log and OpenTelemetry examples do what their docstrings say."""

from __future__ import annotations

import json
import re

import httpx
import pytest

from examples import access_log_combined, access_log_stdlib, otel_console

from .logs import collected

pytestmark = pytest.mark.anyio


def client(app: object) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    return httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000")


async def test_stdlib_example_logs_the_user_redacts_and_skips_health() -> None:
    with collected(access_log_stdlib.access) as records:
        async with client(access_log_stdlib.app) as http:
            response = await http.get("/users/7", params={"token": "abc"})
            await http.get("/health")
    (line,) = [json.loads(record.getMessage()) for record in records]
    assert (line["user_id"], line["query"], line["route"]) == (
        7,
        "token=REDACTED",
        "/users/{user_id}",
    )
    assert line["request_id"] == response.headers["x-request-id"]
    assert line["bytes_sent"] == len(response.content)


async def test_stdlib_example_counts_no_bytes_sent_for_head() -> None:
    # RFC 9110 §9.3.2: Starlette hands the server the GET body, which the server drops.
    with collected(access_log_stdlib.access) as records:
        async with client(access_log_stdlib.app) as http:
            response = await http.head("/users/7")
    (line,) = [json.loads(record.getMessage()) for record in records]
    assert (response.status_code, line["method"], line["bytes_sent"]) == (200, "HEAD", 0)


async def test_combined_example_writes_apache_lines() -> None:
    with collected(access_log_combined.combined) as records:
        async with client(access_log_combined.app) as http:
            await http.get("/", params={"q": "1"}, headers={"user-agent": "curl/8.5.0"})
    assert re.fullmatch(
        r'127\.0\.0\.1 - - \[\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d \+0000\] "GET /\?q=1 HTTP/1\.1"'
        r' 200 5 "-" "curl/8\.5\.0"',
        records[0].getMessage(),
    )


async def test_otel_example_joins_trace_id_request_id_and_log_lines() -> None:
    trace_id = "0af7651916cd43dd8448eb211c80319c"
    with collected(otel_console.log) as records:
        async with client(otel_console.app) as http:
            response = await http.get(
                "/items/3", headers={"traceparent": f"00-{trace_id}-b7ad6b7169203331-01"}
            )
    assert response.headers["x-request-id"] == trace_id
    app_line, access_line = records
    assert app_line.trace_id == trace_id  # type: ignore[attr-defined]
    assert json.loads(access_line.getMessage())["trace_id"] == trace_id
