from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from tests.servers import redis_server


@pytest.fixture
def anyio_backend() -> str:
    # redis-py's asyncio client runs on asyncio only.
    return "asyncio"


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A real redis-server on a free port of 127.0.0.1. If it cannot start the tests fail."""
    with redis_server() as (url, _):
        yield url


@pytest.fixture
async def redis_client(redis_url: str) -> AsyncIterator[Any]:
    import redis.asyncio

    client = redis.asyncio.from_url(redis_url)
    await client.flushdb()
    yield client
    await client.aclose()
