"""The full-stack example for each framework shows every layer's work on one response."""

from __future__ import annotations

import contextlib
import gzip
import importlib
import json

import httpx
import pytest

pytestmark = pytest.mark.anyio

FRAMEWORKS = ["bare", "starlette", "fastapi", "litestar", "quart", "django"]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # Django and Quart run on asyncio only


@pytest.mark.parametrize("framework", FRAMEWORKS)
async def test_every_layer_shows_on_the_response(framework: str) -> None:
    module = importlib.import_module(f"examples.stack_{framework}")
    async with contextlib.AsyncExitStack() as stack:
        if framework == "django":
            from django.test.utils import override_settings

            # Django's settings are process-wide: another example may have configured them
            # first, so route this request through this example's URLs explicitly.
            stack.enter_context(override_settings(ROOT_URLCONF=module.__name__))
        client = await stack.enter_async_context(
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=module.app), base_url="http://127.0.0.1:8000"
            )
        )
        headers = {"Origin": "https://app.example.com", "Accept-Encoding": "gzip"}
        async with client.stream("GET", "/", headers=headers) as first:
            raw = b"".join([chunk async for chunk in first.aiter_raw()])
        second = await client.get("/", headers={"Accept-Encoding": "identity"})

    assert first.status_code == 200
    assert first.headers["content-encoding"] == "gzip"
    assert json.loads(gzip.decompress(raw))["visits"] == 1
    assert first.headers["access-control-allow-origin"] == "https://app.example.com"
    assert first.headers["access-control-allow-credentials"] == "true"
    vary = {token.strip().lower() for token in first.headers["vary"].split(",")}
    assert {"origin", "accept-encoding", "cookie"} <= vary
    assert len(first.headers.get_list("x-request-id")) == 1
    server_timing = first.headers["server-timing"]
    assert server_timing.startswith("app;dur=")
    assert "work;dur=" in server_timing
    assert "session=" in first.headers["set-cookie"]
    # Never a stale length: rewritten for a one-shot body, absent for a streamed one (Quart).
    assert first.headers.get("content-length") in (None, str(len(raw)))

    # The cookie came back through the client's jar: the session counted the second visit.
    assert second.json()["visits"] == 2
    assert "content-encoding" not in second.headers
