"""The request-id example keeps its proxy's id, replaces others, and logs with it."""

from __future__ import annotations

import httpx
import pytest

from examples import request_id as example

from .logs import collected

pytestmark = pytest.mark.anyio


async def test_request_id_example() -> None:
    # Collected after the example's handler, whose filter sets the id.
    with collected(example.log) as records:
        trusted = httpx.ASGITransport(app=example.app, client=("127.0.0.1", 5000))
        outsider = httpx.ASGITransport(app=example.app, client=("203.0.113.9", 5000))
        async with httpx.AsyncClient(transport=trusted, base_url="http://t") as http:
            kept = await http.get("/", headers={"x-request-id": "abc-123"})
        async with httpx.AsyncClient(transport=outsider, base_url="http://t") as http:
            replaced = await http.get("/", headers={"x-request-id": "abc-123"})
    assert kept.json() == {"request_id": "abc-123", "in_scope": "abc-123"}
    assert kept.headers["x-request-id"] == "abc-123"
    new = replaced.headers["x-request-id"]
    assert new != "abc-123"
    assert replaced.json()["request_id"] == new
    assert [getattr(r, "request_id", None) for r in records] == [
        "abc-123",
        new,
    ]
