"""The claims of the "Scaling out" page: what one app process keeps to itself, and what two
processes (here two middleware instances, each with its own store and pools) share."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import anyio
import pytest

from middlewares._core.proxies import client_host, request_origin, request_scheme
from middlewares._core.respond import send_response
from middlewares._types import Receive, Scope, Send
from middlewares.compose import Layer, compose
from middlewares.compression import CompressionMiddleware
from middlewares.cors import CORSMiddleware
from middlewares.offload import Pool, PoolFullError
from middlewares.proxy_headers import ProxyHeadersMiddleware
from middlewares.rate_limit import RateLimitMiddleware
from middlewares.request_id import RequestIDMiddleware
from middlewares.sessions import Session, SessionMiddleware
from middlewares.stores import MemoryRateLimitStore, MemoryStore, RedisRateLimitStore
from middlewares.testing import http_scope, run_asgi
from middlewares.timing import TimingMiddleware

from .servers import redis_server
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


# --- Rate limits across processes (here, two middleware instances) ------------------------------


async def ok(scope: Scope, receive: Receive, send: Send) -> None:
    await send_response(send, 200, body=b"ok")


def limited(store: Any) -> RateLimitMiddleware:
    return RateLimitMiddleware(ok, application_limits=["5/minute"], store=store, store_timeout=5)


async def admitted(processes: list[RateLimitMiddleware], requests: int) -> int:
    """Send ``requests`` requests from one client at once, spread over ``processes``."""
    statuses: list[int] = []

    async def one(n: int) -> None:
        statuses.append((await run_asgi(processes[n % len(processes)], http_scope())).status)

    async with anyio.create_task_group() as group:
        for n in range(requests):
            group.start_soon(one, n)
    return statuses.count(200)


async def test_memory_rate_limit_stores_count_alone_so_the_limit_multiplies() -> None:
    processes = [limited(MemoryRateLimitStore()), limited(MemoryRateLimitStore())]
    assert await admitted(processes, 20) == 10  # 5 a minute per process, 2 processes


@pytest.fixture(scope="module")
def shared_redis() -> Iterator[str]:
    with redis_server() as (url, _):
        yield url


@pytest.mark.parametrize("anyio_backend", ["asyncio"])  # redis-py's client runs on asyncio
@pytest.mark.parametrize(
    "requests",
    [
        pytest.param(1, id="one after another"),
        pytest.param(20, id="twenty at once"),
    ],
)
async def test_one_redis_rate_limit_store_holds_the_limit_across_processes(
    shared_redis: str, requests: int
) -> None:
    prefix = f"scaling-{requests}:"  # one key space per case, shared by both processes
    stores = [RedisRateLimitStore(shared_redis, prefix=prefix) for _ in range(2)]
    processes = [limited(store) for store in stores]
    if requests == 1:
        total = 0
        for n in range(12):
            total += await admitted([processes[n % 2]], 1)
    else:
        total = await admitted(processes, requests)
    for store in stores:
        await store.aclose()
    assert total == 5


# --- Behind a load balancer ---------------------------------------------------------------------

BALANCER = "10.0.0.2"


async def echo_view(scope: Scope, receive: Receive, send: Send) -> None:
    scope["session"]["visited"] = True
    decision = scope["middlewares.rate_limit"]
    seen = {
        "client": client_host(scope),
        "scheme": request_scheme(scope),
        "origin": request_origin(scope),
        "key": decision.key,
    }
    await send_response(send, 200, body=json.dumps(seen).encode())


def behind_balancer(**proxy_options: Any) -> ProxyHeadersMiddleware:
    return compose(
        echo_view,
        Layer(ProxyHeadersMiddleware, trusted_hosts=[BALANCER], **proxy_options),
        Layer(RateLimitMiddleware, application_limits=["100/minute"]),
        Layer(SessionMiddleware, secret_key=KEY, https_only="auto"),
    )  # type: ignore[return-value]


KEY = "a-shared-session-secret-of-32-bytes"
FORWARDED = {
    "host": "10.0.0.9:8000",
    "x-forwarded-for": "203.0.113.7",
    "x-forwarded-proto": "https",
    "x-forwarded-host": "shop.example.com",
}


@pytest.mark.parametrize(
    ("peer", "options", "expected"),
    [
        pytest.param(
            BALANCER,
            {"x_host": 1},
            ("203.0.113.7", "https", "https://shop.example.com"),
            id="from the balancer with x_host: the forwarded client, scheme and host",
        ),
        pytest.param(
            BALANCER,
            {},
            ("203.0.113.7", "https", "https://10.0.0.9:8000"),
            id="from the balancer by default: client and scheme, Host as received",
        ),
        pytest.param(
            "203.0.113.66",
            {"x_host": 1},
            ("203.0.113.66", "http", "http://10.0.0.9:8000"),
            id="from anyone else: forwarded headers ignored",
        ),
    ],
)
async def test_proxy_headers_outermost_give_every_layer_the_real_client(
    peer: str, options: dict[str, Any], expected: tuple[str, str, str]
) -> None:
    recorded = await run_asgi(
        behind_balancer(**options), http_scope(headers=FORWARDED, client=(peer, 40000))
    )
    seen = json.loads(recorded.body)
    assert (seen["client"], seen["scheme"], seen["origin"]) == expected
    assert seen["key"] == expected[0]  # rate-limit key: the resolved client
    secure = "; secure" in (recorded.header("set-cookie") or "").lower()
    assert secure is (expected[1] == "https")  # https_only="auto" follows the resolved scheme


async def test_rate_limit_keys_are_the_clients_not_the_balancer() -> None:
    app = behind_balancer()
    keys = set()
    for client in ("203.0.113.7", "203.0.113.8", "198.51.100.1"):
        headers = {**FORWARDED, "x-forwarded-for": client}
        recorded = await run_asgi(app, http_scope(headers=headers, client=(BALANCER, 40000)))
        keys.add(json.loads(recorded.body)["key"])
    assert keys == {"203.0.113.7", "203.0.113.8", "198.51.100.1"}
