"""The claims of the "Scaling out" page: what one app process keeps to itself, and what two
processes (here two middleware instances, each with its own store and pools) share."""

from __future__ import annotations

import json
from typing import Any

import pytest

from middlewares.offload import Pool, PoolFullError
from middlewares.sessions import Session, SessionMiddleware
from middlewares.stores import MemoryStore

from .stores.helpers import app_doing, call, cookie_pair
from .test_offload_executor import blocker

pytestmark = pytest.mark.anyio


def put_user(session: Session) -> None:
    session["user"] = "ada"


def read(session: Session) -> dict[str, Any]:
    return dict(session)


def instance(action: Any, secret_key: Any, store: Any = None) -> SessionMiddleware:
    return SessionMiddleware(app_doing(action), secret_key=secret_key, store=store)


async def test_memory_store_sessions_stay_in_the_process_that_made_them() -> None:
    process_a, process_b = MemoryStore(), MemoryStore()
    cookie = cookie_pair(await call(instance(put_user, "shared", process_a)))
    seen_by_a = await call(instance(read, "shared", process_a), cookie)
    seen_by_b = await call(instance(read, "shared", process_b), cookie)
    assert json.loads(seen_by_a.body) == {"user": "ada"}
    assert json.loads(seen_by_b.body) == {}  # the other worker never heard of this session


@pytest.mark.parametrize(
    ("reader_keys", "shared"),
    [
        pytest.param("key-1", True, id="same key on every instance"),
        pytest.param(["key-2", "key-1"], True, id="rotated ring still verifies the old key"),
        pytest.param("key-9", False, id="an instance with another key sees an empty session"),
    ],
)
async def test_cookie_sessions_need_the_same_key_ring_everywhere(
    reader_keys: Any, shared: bool
) -> None:
    cookie = cookie_pair(await call(instance(put_user, "key-1")))
    seen = json.loads((await call(instance(read, reader_keys), cookie)).body)
    assert seen == ({"user": "ada"} if shared else {})


async def test_a_rotated_instance_re_signs_so_the_old_key_can_retire() -> None:
    cookie = cookie_pair(await call(instance(put_user, "key-1")))
    rotated = await call(instance(lambda s: s.update(cart=[1]), ["key-2", "key-1"]), cookie)
    new_cookie = cookie_pair(rotated)
    seen = json.loads((await call(instance(read, "key-2"), new_cookie)).body)
    assert seen == {"user": "ada", "cart": [1]}


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
