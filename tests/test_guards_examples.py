"""The body-limit and timeout examples do what their docstrings say."""

from __future__ import annotations

import httpx
import pytest

from examples.body_limit import app as body_limit_app
from examples.timeout import app as timeout_app
from middlewares._types import ASGIApp

pytestmark = pytest.mark.anyio


def client(app: ASGIApp) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


async def test_body_limit_example_refuses_big_json_and_takes_big_uploads() -> None:
    async with client(body_limit_app) as http:
        small = await http.post("/items", content=b"{}")
        big = await http.post("/items", content=b"x" * (1024 * 1024 + 1))
        upload = await http.put("/uploads/video.mp4", content=b"x" * (2 * 1024 * 1024))
    assert small.json() == {"received": 2}
    assert big.status_code == 413
    assert big.json()["max_body_size"] == 1024 * 1024
    assert upload.json() == {"name": "video.mp4", "bytes": 2 * 1024 * 1024}


async def test_timeout_example_hands_the_budget_to_the_handler() -> None:
    async with client(timeout_app) as http:
        response = await http.get("/search", params={"q": "fast"})
    assert 0 < response.json()["budget_seconds"] <= 5
