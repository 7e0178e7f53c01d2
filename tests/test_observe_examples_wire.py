"""The observability examples run as their docstrings say (``uvicorn examples.x:app ...`` in a
process of its own), and what they write is what a log shipper or a collector reads: structlog
JSON lines and Apache combined lines on stdout, span JSON from the console exporter, and OTLP
protobuf posted to a real HTTP receiver on 127.0.0.1."""

from __future__ import annotations

import contextlib
import json
import os
import pathlib
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from middlewares._types import Receive, Scope, Send
from middlewares.access_log import build_record, format_combined

from .servers import free_port, serve

ROOT = pathlib.Path(__file__).parent.parent
TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
PARENT_ID = "b7ad6b7169203331"
TRACEPARENT = f"00-{TRACE_ID}-{PARENT_ID}-01"


@dataclass
class Example:
    """An example served by uvicorn in its own process; its output once it has stopped."""

    url: str
    stdout: str = ""
    stderr: str = ""


@contextlib.contextmanager
def uvicorn_example(
    name: str, *flags: str, env: Mapping[str, str] | None = None, quiet: bool = True
) -> Iterator[Example]:
    """Run ``uvicorn examples.<name>:app <flags>`` with ``env`` (and no other ``OTEL_*``
    variable); stop it with SIGTERM, as a process manager does, on leaving the block. A
    ``quiet`` example logs nothing above INFO."""
    port = free_port()
    command = [sys.executable, "-m", "uvicorn", f"examples.{name}:app", "--port", str(port)]
    environment = {key: value for key, value in os.environ.items() if "OTEL_" not in key}
    environment.update(env or {}, PYTHONPATH=str(ROOT))
    example = Example(f"http://127.0.0.1:{port}")
    process = subprocess.Popen(
        [*command, *flags],
        cwd=ROOT,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
                break
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{name} did not start")
            time.sleep(0.05)
        yield example
    finally:
        process.terminate()  # uvicorn shuts down gracefully: the lifespan's shutdown runs
        stdout, stderr = process.communicate(timeout=60)
        example.stdout, example.stderr = stdout.decode(), stderr.decode()
    assert "Finished server process" in example.stderr, example.stderr  # a graceful stop
    if quiet:  # not a warning, not an error, not a traceback: from uvicorn, app or exporters
        assert all(line.startswith("INFO") for line in example.stderr.splitlines()), example.stderr


def request(target: bytes, *headers: bytes, method: bytes = b"GET") -> bytes:
    """An HTTP/1.1 request, its bytes as given, asking the server to close after replying."""
    lines = [method + b" " + target + b" HTTP/1.1", b"Host: 127.0.0.1", *headers]
    return b"\r\n".join([*lines, b"Connection: close", b"", b""])


def raw_request(url: str, sent: bytes) -> bytes:
    """Send ``sent`` as is (httpx refuses what a hostile client sends); return the body."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(sent)
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk
    return reply.partition(b"\r\n\r\n")[2]


# --- structlog --------------------------------------------------------------------------------


@pytest.mark.server
def test_trap_57_structlog_example_writes_one_json_line_per_request_with_its_fields() -> None:
    with uvicorn_example("access_log_structlog", "--no-access-log") as example:
        with httpx.Client(base_url=example.url) as http:
            user = http.get("/users/7", params={"token": "abc"}, headers={"user-agent": "curl"})
            home = http.get("/")
        # Trap 60: a path with an encoded newline and ANSI escape stays on its line.
        raw_request(example.url, request(b"/%0a%1b[31m"))
    lines = [json.loads(line) for line in example.stdout.splitlines()]  # every line is JSON
    event, *access = lines
    assert (event["event"], event["user_id"], event["logger"]) == ("user loaded", 7, "shop.users")
    assert [line["event"] for line in access] == ["http request"] * 3  # one per request
    assert [line["path"] for line in access] == ["/users/7", "/", "/%0a%1b[31m"]
    first = access[0]
    assert first["logger"] == "shop.access"
    assert (first["status"], first["outcome"], first["route"]) == (200, "ok", "/users/{user_id}")
    assert (first["query"], first["user_agent"]) == ("token=REDACTED", "curl")
    assert first["user_id"] == 7  # the app's field, through request.state
    assert first["request_id"] == user.headers["x-request-id"]
    assert first["bytes_sent"] == len(user.content)
    assert access[1]["request_id"] == home.headers["x-request-id"]
    assert access[2]["status"] == 404
    assert all(isinstance(line["duration_ms"], float) for line in access)


# --- Apache combined --------------------------------------------------------------------------

# Logstash's HTTPD_COMBINEDLOG grok pattern (logstash-patterns-core, patterns/ecs-v1/httpd), the
# one Logstash and most shippers parse the combined format with: IPORHOST, HTTPDUSER twice,
# [HTTPDATE], the quoted request, status, bytes or -, and two QS (quoted strings in which a
# backslash escapes the next character).
QS = r'"(?:\\.|[^\\"])*"'
HTTPD_COMBINEDLOG = re.compile(
    r"(?P<clientip>\S+) (?P<ident>\S+) (?P<auth>\S+)"
    r" \[(?P<timestamp>\d{2}/\w{3}/\d{4}:\d{2}:\d{2}:\d{2} [+-]\d{4})\]"
    r' "(?:(?P<verb>\w+) (?P<request>\S+)(?: HTTP/(?P<httpversion>[\d.]+))?|(?P<rawrequest>.*?))"'
    r" (?P<response>\d{3}) (?:(?P<bytes>\d+)|-)"
    rf" (?P<referrer>{QS}) (?P<agent>{QS})"
)


@pytest.mark.server
@pytest.mark.parametrize(
    ("sent", "fields"),
    [
        pytest.param(
            request(b"/?q=1", b"User-Agent: curl/8.5.0"),
            {"request": "/?q=1", "response": "200", "bytes": "5", "agent": '"curl/8.5.0"'},
            id="a plain request, its query and the bytes sent",
        ),
        pytest.param(
            request(b"/missing", b"Referer: https://ref.example/a?token=abc#top"),
            {"response": "404", "referrer": '"https://ref.example/a?token=REDACTED"'},
            id="the referer with its token redacted and its fragment dropped",
        ),
        pytest.param(
            request(b"/", b'User-Agent: x" 200 1 "-" "forged'),
            {"response": "200", "agent": r'"x\" 200 1 \"-\" \"forged"'},
            id="trap 60: quotes in the user agent cannot forge the status",
        ),
        pytest.param(
            request(b"/", "User-Agent: café\\".encode()),
            {"agent": r'"caf\xc3\xa9\\"'},
            id="non-ASCII bytes and a backslash escaped as Apache does",
        ),
        pytest.param(
            request(b"/%0a%1b[31m"),
            {"request": "/%0a%1b[31m", "response": "404"},
            id="trap 60: an encoded newline and ANSI escape stay encoded",
        ),
        pytest.param(
            request(b"/", method=b"HEAD"),
            {"verb": "HEAD", "response": "200", "bytes": None},
            id="no body sent: bytes is a dash",
        ),
        pytest.param(
            request(b"/", b"Content-Length: 4", method=b"POST") + b"data",
            {"verb": "POST", "response": "405", "bytes": "18"},
            id="a refused POST",
        ),
    ],
)
def test_combined_example_lines_parse_with_a_shippers_pattern(
    sent: bytes, fields: dict[str, str | None]
) -> None:
    with uvicorn_example("access_log_combined", "--no-access-log") as example:
        body = raw_request(example.url, sent)
    (line,) = example.stdout.splitlines()  # one request, one line
    match = HTTPD_COMBINEDLOG.fullmatch(line)
    assert match is not None, line
    parsed = match.groupdict()
    assert (parsed["clientip"], parsed["ident"], parsed["auth"]) == ("127.0.0.1", "-", "-")
    assert parsed["httpversion"] == "1.1"
    arrived = datetime.strptime(parsed["timestamp"], "%d/%b/%Y:%H:%M:%S %z")
    assert arrived.utcoffset() == timedelta(0)
    assert parsed["bytes"] == (str(len(body)) if body else None)
    expected = {"verb": "GET", "referrer": '"-"', **fields}
    assert {key: parsed[key] for key in expected} == expected


@settings(max_examples=300, deadline=None)
@given(
    method=st.sampled_from(["GET", "POST", "PROPFIND"]),
    raw_path=st.binary(max_size=40),
    query=st.binary(max_size=40),
    header_values=st.lists(st.binary(max_size=40), min_size=2, max_size=2),
    client=st.ip_addresses(),
    status=st.integers(100, 599),
    sent=st.integers(0, 10**12),
)
def test_any_request_gives_one_combined_line_a_shipper_parses_to_the_true_fields(
    method: str,
    raw_path: bytes,
    query: bytes,
    header_values: list[bytes],
    client: Any,
    status: int,
    sent: int,
) -> None:
    user_agent, referer = header_values
    scope = {
        "type": "http",
        "method": method,
        "raw_path": raw_path,
        "query_string": query,
        "http_version": "1.1",
        "headers": [(b"user-agent", user_agent), (b"referer", referer)],
        "client": (str(client), 5000),
    }
    record = build_record(scope, status=status, outcome="ok", started=time.time(), bytes_sent=sent)
    line = format_combined(record)
    match = HTTPD_COMBINEDLOG.fullmatch(line)
    assert match is not None, line
    assert line.isprintable()  # no newline, no escape sequence reaches the terminal
    parsed = match.groupdict()
    assert (parsed["clientip"], parsed["response"]) == (str(client), str(status))
    assert parsed["bytes"] == (str(sent) if sent else None)


# --- OpenTelemetry, console exporter ----------------------------------------------------------


def json_documents(text: str) -> list[Any]:
    """The JSON documents printed one after another (the console exporter indents them)."""
    decoder = json.JSONDecoder()
    documents: list[Any] = []
    rest = text.strip()
    while rest:
        document, end = decoder.raw_decode(rest)
        documents.append(document)
        rest = rest[end:].lstrip()
    return documents


@pytest.mark.server
def test_console_example_prints_the_span_as_json() -> None:
    with uvicorn_example("otel_console", "--no-access-log") as example:
        response = httpx.get(f"{example.url}/items/3", headers={"traceparent": TRACEPARENT})
    (span,) = json_documents(example.stdout)
    assert span["name"] == "GET /items/{item_id}"
    assert span["kind"] == "SpanKind.SERVER"
    assert span["context"]["trace_id"] == f"0x{TRACE_ID}"
    assert span["parent_id"] == f"0x{PARENT_ID}"
    assert span["attributes"]["http.route"] == "/items/{item_id}"
    assert span["attributes"]["http.response.status_code"] == 200
    assert span["attributes"]["url.path"] == "/items/3"
    assert span["resource"]["attributes"]["service.name"] == "example"
    assert response.headers["x-request-id"] == TRACE_ID
    # The app's line and the access line (on stderr) carry the same trace id.
    assert f"INFO trace={TRACE_ID} loading item 3" in example.stderr
    (access,) = [line for line in example.stderr.splitlines() if '"method": "GET"' in line]
    assert json.loads(access.split(" ", 2)[2])["trace_id"] == TRACE_ID  # after INFO trace=...


# --- OpenTelemetry, OTLP over HTTP ------------------------------------------------------------


@dataclass
class Collector:
    """An OTLP/HTTP receiver: keeps the protobuf bodies posted to each path, answers 200."""

    posts: dict[str, list[bytes]] = field(default_factory=dict)
    content_types: set[bytes] = field(default_factory=set)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        body, more = b"", True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        self.posts.setdefault(scope["path"], []).append(body)
        self.content_types.update(v for k, v in scope["headers"] if k == b"content-type")
        headers = [(b"content-type", b"application/x-protobuf")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b""})


def attributes(pairs: Iterable[KeyValue]) -> dict[str, Any]:
    """OTLP attributes as a dict: each value is whichever of string, int, bool... is set."""
    values: dict[str, Any] = {}
    for pair in pairs:
        kind = pair.value.WhichOneof("value")
        values[pair.key] = getattr(pair.value, kind) if kind else None
    return values


@pytest.mark.server
def test_otlp_example_exports_spans_and_metrics_to_the_collector_in_the_environment() -> None:
    collector = Collector()
    with serve(collector) as endpoint:
        environment = {
            "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
            "OTEL_SERVICE_NAME": "shop",
            # No timed export during the test: what arrives is what the shutdown flushed.
            "OTEL_BSP_SCHEDULE_DELAY": "600000",
            "OTEL_METRIC_EXPORT_INTERVAL": "600000",
        }
        with uvicorn_example("otel_otlp", "--lifespan", "on", env=environment) as example:
            with httpx.Client(base_url=example.url) as http:
                item = http.get("/items/3", headers={"traceparent": TRACEPARENT})
                health = http.get("/health")
                healthcheck = http.get("/healthcheck")
            assert collector.posts == {}  # batched: nothing is sent before the shutdown
    assert (item.status_code, health.status_code, healthcheck.status_code) == (200, 200, 404)
    assert collector.content_types == {b"application/x-protobuf"}

    exported: list[tuple[dict[str, Any], Span]] = []
    for body in collector.posts["/v1/traces"]:
        traces = ExportTraceServiceRequest.FromString(body)
        for resource_spans in traces.resource_spans:
            resource = attributes(resource_spans.resource.attributes)
            for scope_spans in resource_spans.scope_spans:
                assert scope_spans.scope.name == "middlewares"
                exported += [(resource, span) for span in scope_spans.spans]
    # /health is excluded; /healthcheck (a 404, no route) is not.
    assert sorted(span.name for _, span in exported) == ["GET", "GET /items/{item_id}"]
    resource, span = next(pair for pair in exported if pair[1].name != "GET")
    assert resource["service.name"] == "shop"
    assert span.kind == Span.SpanKind.SPAN_KIND_SERVER
    assert span.trace_id.hex() == TRACE_ID  # a child of the trace the client sent
    assert span.parent_span_id.hex() == PARENT_ID
    span_attributes = attributes(span.attributes)
    assert span_attributes["http.route"] == "/items/{item_id}"
    assert span_attributes["http.response.status_code"] == 200

    counts: dict[str | None, int] = {}
    for body in collector.posts["/v1/metrics"]:
        for resource_metrics in ExportMetricsServiceRequest.FromString(body).resource_metrics:
            for scope_metrics in resource_metrics.scope_metrics:
                for metric in scope_metrics.metrics:
                    if metric.name == "http.server.request.duration":
                        for point in metric.histogram.data_points:
                            route = attributes(point.attributes).get("http.route")
                            counts[route] = counts.get(route, 0) + point.count
    assert counts == {"/items/{item_id}": 1, None: 1}


@pytest.mark.server
def test_otlp_example_serves_while_the_collector_is_down_and_still_stops() -> None:
    environment = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{free_port()}",  # nothing listens
        "OTEL_EXPORTER_OTLP_TIMEOUT": "1",  # how long the shutdown may retry each export
    }
    with uvicorn_example("otel_otlp", "--lifespan", "on", env=environment, quiet=False) as example:
        response = httpx.get(f"{example.url}/items/3")
    assert response.status_code == 200
    assert "Failed to export spans" in example.stderr  # said, not raised into a request
    assert "Traceback" not in example.stderr
