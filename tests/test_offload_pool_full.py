"""A full pool behind run_in_thread, in a FastAPI app: with the one-line exception handler the
client gets the 503 with Retry-After that OffloadMiddleware sends, not a bare 500."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from middlewares import PoolFullError, pool_full_handler, run_in_thread
from middlewares.offload import Pool

from .typecheck import mypy_strict

pytestmark = pytest.mark.anyio


@pytest.fixture
def busy_pool() -> Iterator[Pool]:
    """A pool whose one worker is busy and whose queue holds nothing."""
    pool = Pool("switching-full", max_workers=1, max_queue=0)
    release = threading.Event()
    pool.submit(release.wait)
    yield pool
    release.set()
    pool._executor.shutdown(wait=True)


def site(pool: Pool, *, handled: bool) -> FastAPI:
    app = FastAPI()
    if handled:
        app.add_exception_handler(PoolFullError, pool_full_handler)

    @app.get("/report")
    async def report() -> dict[str, int]:
        return {"total": await run_in_thread(sum, [1, 2], pool=pool)}

    return app


async def test_a_full_pool_is_a_503_with_retry_after_once_the_handler_is_added(
    busy_pool: Pool,
) -> None:
    transport = httpx.ASGITransport(app=site(busy_pool, handled=True))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        response = await client.get("/report")
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
    assert response.text == "Service Unavailable"


async def test_without_the_handler_a_full_pool_is_a_500(busy_pool: Pool) -> None:
    transport = httpx.ASGITransport(app=site(busy_pool, handled=False), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        response = await client.get("/report")
    assert response.status_code == 500


def test_the_handler_line_passes_mypy_strict(tmp_path: Path) -> None:
    checked = mypy_strict(
        """
            from fastapi import FastAPI
            from middlewares import PoolFullError, pool_full_handler

            app = FastAPI()
            app.add_exception_handler(PoolFullError, pool_full_handler)
            """,
        tmp_path,
    )
    assert checked.returncode == 0, checked.stdout
