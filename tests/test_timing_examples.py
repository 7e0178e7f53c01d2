"""The timing examples do what their docstrings say."""

from __future__ import annotations

import json
import re

import httpx
import pytest

from examples import access_log, timing_prometheus
from examples import timing as timing_example

from .logs import collected

pytestmark = pytest.mark.anyio


def client(app: object, base_url: str = "http://127.0.0.1:8000") -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=base_url)  # type: ignore[arg-type]


async def test_timing_example_shows_its_steps_to_its_own_pages() -> None:
    async with client(timing_example.app) as http:
        home = await http.get("/")
        user = await http.get("/users/7")
        elsewhere = await http.get("/users/7", headers={"origin": "https://other.test"})
    assert home.status_code == 200
    assert re.fullmatch(
        r'app;dur=[0-9.]+, db;dur=[0-9.]+;desc="users query", cache;desc="miss",'
        r" render;dur=[0-9.]+",
        user.headers["server-timing"],
    )
    assert "server-timing" not in elsewhere.headers


async def test_prometheus_example_bounds_label_cardinality() -> None:
    async with client(timing_prometheus.app) as http:
        assert (await http.get("/")).status_code == 200
        for path in ("/users/1", "/users/2", "/nowhere", "/wp-admin.php"):
            await http.get(path)
        await http.request("BREW", "/users/3")
        exposition = (await http.get("/metrics")).text
    routes = set(
        re.findall(r'http_request_duration_seconds_count\{[^}]*route="([^"]+)"', exposition)
    )
    assert routes == {"/", "/users/{user_id}", "__unmatched__"}
    assert 'method="OTHER"' in exposition
    # The registry lives as long as the process: counts grow with every test run.
    assert re.search(
        r'app_step_duration_seconds_count\{route="/users/\{user_id\}",step="db"\}', exposition
    )
    assert 'route="/metrics"' not in exposition  # the scrape itself is excluded


async def test_access_log_example_writes_one_json_line_per_request() -> None:
    with collected(access_log.access_log) as records:
        async with client(access_log.app) as http:
            response = await http.get("/users/7", headers={"x-request-id": "req-1"})
            await http.get("/")
    assert response.headers["x-request-id"] == "req-1"
    lines = [json.loads(r.getMessage()) for r in records]
    assert lines[0]["request_id"] == "req-1"
    assert (lines[0]["route"], lines[0]["path"], lines[0]["status"]) == (
        "/users/{user_id}",
        "/users/7",
        200,
    )
    assert lines[0]["ttfb_ms"] <= lines[0]["duration_ms"]
    assert len(lines[1]["request_id"]) == 32
