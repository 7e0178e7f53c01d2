"""The CSRF example: its form posts, curl without a token and cross-site posts are refused, the
webhook is exempt, and signing in retires the old token."""

from __future__ import annotations

import re

import httpx
import pytest

from examples import csrf as example

pytestmark = pytest.mark.anyio

BASE = "http://127.0.0.1:8000"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # as uvicorn serves the examples


def token_in(page: str) -> str:
    found = re.search(r'name="csrftoken" value="([^"]+)"', page)
    assert found is not None
    return found.group(1)


async def test_csrf_example() -> None:
    transport = httpx.ASGITransport(app=example.app)
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
        token = token_in((await client.get("/")).text)
        sent = await client.post("/transfer", data={"csrftoken": token, "amount": "5"})
        assert (sent.status_code, sent.text) == (200, "sent 5")
        curl = await client.post("/transfer", data={"amount": "5"})
        assert curl.status_code == 403
        browser = await client.post(
            "/transfer", data={"amount": "5"}, headers={"sec-fetch-site": "same-origin"}
        )
        assert browser.status_code == 200
        forged = await client.post(
            "/transfer",
            data={"csrftoken": token, "amount": "5"},
            headers={"sec-fetch-site": "cross-site", "origin": "https://evil.example"},
        )
        assert forged.status_code == 403
        webhook = await client.post("/webhooks/payments", content=b"{}")
        assert webhook.text == "received"
        login = await client.post("/login", data={"csrftoken": token})
        assert login.status_code == 303
        stale = await client.post("/transfer", data={"csrftoken": token, "amount": "5"})
        assert stale.status_code == 403
        fresh = token_in((await client.get("/")).text)
        assert (await client.post("/transfer", data={"csrftoken": fresh})).status_code == 200
