"""The rate-limit examples do what their docstrings say: a strict login policy on top of a
site-wide one, and FastAPI policies per route template keyed by API key."""

from __future__ import annotations

import re

import httpx
import pytest

from examples import rate_limit, rate_limit_fastapi

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def client_for(app: object, address: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(address, 40000))  # type: ignore[arg-type]
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


def remaining(response: httpx.Response) -> list[int]:
    return [int(r) for r in re.findall(r";r=(\d+)", response.headers["ratelimit"])]


async def test_login_allows_five_tries_a_minute_on_top_of_the_site_limit() -> None:
    async with client_for(rate_limit.app, "198.51.100.10") as client:
        statuses = [(await client.post("/login")).status_code for _ in range(6)]
        assert statuses == [200] * 5 + [429]
        refused = await client.post("/login")
        assert refused.headers["retry-after"] == "12"
        assert refused.headers["ratelimit-policy"] == (
            '"site";q=100;w=60, "login";q=5;w=60, "login-hourly";q=20;w=3600'
        )
        home = await client.get("/")
        assert home.headers["ratelimit-policy"] == '"site";q=100;w=60'
        assert home.json() == {"remaining": [14]}  # refused tries charged nothing
        assert "ratelimit" not in (await client.get("/health")).headers


async def test_fastapi_items_share_the_route_template_allowance_per_api_key() -> None:
    async with client_for(rate_limit_fastapi.app, "198.51.100.11") as client:
        first = await client.get("/items/1", headers={"x-api-key": "k1"})
        second = await client.get("/items/2", headers={"x-api-key": "k1"})
        other_key = await client.get("/items/2", headers={"x-api-key": "k2"})
        assert remaining(first) == [999, 29]
        assert remaining(second) == [998, 28]
        assert remaining(other_key) == [999, 29]


async def test_fastapi_refusals_are_problem_json() -> None:
    async with client_for(rate_limit_fastapi.app, "198.51.100.12") as client:
        for _ in range(3):
            assert (await client.get("/search", params={"q": "x"})).status_code == 200
        refused = await client.get("/search")
        assert refused.status_code == 429
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.json()["detail"] == "Rate limit search exceeded; retry in 20 s."
