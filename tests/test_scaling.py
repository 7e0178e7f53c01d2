"""The claims of the "Scaling out" page: what one app process keeps to itself, and what two
processes (here two middleware instances, each with its own store and pools) share."""

from __future__ import annotations

import json
from typing import Any

import pytest

from middlewares.compression import CompressionMiddleware
from middlewares.cors import CORSMiddleware
from middlewares.offload import Pool, PoolFullError
from middlewares.request_id import RequestIDMiddleware
from middlewares.sessions import Session, SessionMiddleware
from middlewares.stores import MemoryStore
from middlewares.testing import http_scope, run_asgi
from middlewares.timing import TimingMiddleware

from .stores.helpers import app_doing, call, cookie_pair
from .test_offload_executor import blocker

pytestmark = pytest.mark.anyio

ORIGIN = "https://shop.example.com"


def put_user(session: Session) -> None:
    session["user"] = "ada"


def read(session: Session) -> dict[str, Any]:
    return dict(session)


def instance(action: Any, secret_key: Any, store: Any = None) -> SessionMiddleware:
    return SessionMiddleware(app_doing(action), secret_key=secret_key, store=store)


async def test_memory_store_sessions_stay_in_the_process_that_made_them() -> None:
    process_a, process_b = MemoryStore(), MemoryStore()
    cookie = cookie_pair(
        await call(instance(put_user, "a-shared-session-secret-of-32-bytes", process_a))
    )
    seen_by_a = await call(instance(read, "a-shared-session-secret-of-32-bytes", process_a), cookie)
    seen_by_b = await call(instance(read, "a-shared-session-secret-of-32-bytes", process_b), cookie)
    assert json.loads(seen_by_a.body) == {"user": "ada"}
    assert json.loads(seen_by_b.body) == {}  # the other worker never heard of this session


@pytest.mark.parametrize(
    ("writer_keys", "reader_keys", "shared"),
    [
        pytest.param(
            "key-1-of-a-session-secret-32-bytes",
            "key-1-of-a-session-secret-32-bytes",
            True,
            id="same key on every process",
        ),
        pytest.param(
            ["key-1-of-a-session-secret-32-bytes", "key-2-of-a-session-secret-32-bytes"],
            "key-1-of-a-session-secret-32-bytes",
            True,
            id="rotation step 1 signs with the old key",
        ),
        pytest.param(
            ["key-2-of-a-session-secret-32-bytes", "key-1-of-a-session-secret-32-bytes"],
            ["key-1-of-a-session-secret-32-bytes", "key-2-of-a-session-secret-32-bytes"],
            True,
            id="rotation step 2 signs with the new key which step 1 verifies",
        ),
        pytest.param(
            ["key-2-of-a-session-secret-32-bytes", "key-1-of-a-session-secret-32-bytes"],
            "key-1-of-a-session-secret-32-bytes",
            False,
            id="skipping step 1 leaves old copies rejecting new cookies",
        ),
        pytest.param(
            "key-9-of-a-session-secret-32-bytes",
            "key-1-of-a-session-secret-32-bytes",
            False,
            id="a key generated at start-up is rejected",
        ),
    ],
)
async def test_cookie_sessions_need_one_key_ring_everywhere(
    writer_keys: Any, reader_keys: Any, shared: bool
) -> None:
    cookie = cookie_pair(await call(instance(put_user, writer_keys)))
    seen = json.loads((await call(instance(read, reader_keys), cookie)).body)
    assert seen == ({"user": "ada"} if shared else {})


def snapshot(middleware: Any) -> dict[str, str]:
    return {slot: repr(getattr(middleware, slot)) for slot in type(middleware).__slots__}


@pytest.mark.parametrize(
    "middleware",
    [
        pytest.param(CORSMiddleware(app_doing(), allow_origins=[ORIGIN]), id="CORS"),
        pytest.param(CompressionMiddleware(app_doing(), minimum_size=0), id="compression"),
        pytest.param(TimingMiddleware(app_doing()), id="timing"),
        pytest.param(RequestIDMiddleware(app_doing()), id="request ids"),
    ],
)
async def test_stateless_middleware_keeps_nothing_between_requests(middleware: Any) -> None:
    before = snapshot(middleware)
    for _ in range(3):
        scope = http_scope(headers={"origin": ORIGIN, "accept-encoding": "gzip"})
        assert (await run_asgi(middleware, scope)).status == 200
    assert snapshot(middleware) == before


def test_a_local_pool_bounds_one_process_only() -> None:
    block, entered, release = blocker()
    process_a = Pool("scaling-a", max_workers=1, max_queue=0)
    process_b = Pool("scaling-b", max_workers=1, max_queue=0)
    process_a.submit(block)
    assert entered.wait(10)
    with pytest.raises(PoolFullError):
        process_a.submit(str)
    assert process_b.submit(str, 1).result(10) == "1"  # capacity is per process: n x max_workers
    release.set()
    process_a.shutdown()
    process_b.shutdown()
