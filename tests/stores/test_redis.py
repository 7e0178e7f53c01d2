"""RedisStore against a real redis-server: semantics, sharing between machines, outages."""

from __future__ import annotations

import os
import signal
from typing import Any

import pytest

from middlewares.sessions import Session, SessionMiddleware, SessionStoreError
from middlewares.stores import RedisStore
from tests.servers import redis_server

from .helpers import Clock, app_doing, call, cookie_pair, result, set_cookies

pytestmark = [
    pytest.mark.anyio,
    # Short keys keep these tests readable; the warning itself is tested in test_sessions_compat.
    pytest.mark.filterwarnings("ignore:secret_key has a key shorter:UserWarning"),
]


def read(session: Session) -> dict[str, Any]:
    return dict(session)


def put_user(session: Session) -> None:
    session["user"] = "ada"


async def test_create_update_load_delete_with_prefix_and_ttl(redis_client: Any) -> None:
    store = RedisStore(client=redis_client, prefix="app1:")
    assert await store.load("x") is None
    assert not await store.update("x", b"data", 100)
    assert await store.create("x", b"data", 100)
    assert not await store.create("x", b"other", 100)
    assert await store.load("x") == b"data"
    assert await store.update("x", b"new", 50)
    assert await store.load("x") == b"new"
    assert await redis_client.keys("*") == [b"app1:x"]
    assert 0 < await redis_client.ttl("app1:x") <= 50
    await store.delete("x")
    assert await store.load("x") is None


async def test_sessions_live_in_redis_with_the_ttl_of_max_age(
    redis_url: str, redis_client: Any
) -> None:
    store = RedisStore(redis_url)
    options = {"secret_key": "s", "store": store, "max_age": 600, "id_factory": lambda: "sid"}
    cookie = cookie_pair(await call(SessionMiddleware(app_doing(put_user), **options)))
    assert result(await call(SessionMiddleware(app_doing(read), **options), cookie)) == {
        "user": "ada"
    }
    assert (await redis_client.get("session:sid")).endswith(b'{"user":"ada"}')
    assert 590 < await redis_client.ttl("session:sid") <= 600
    clear = SessionMiddleware(app_doing(lambda s: s.clear()), **options)
    assert set_cookies(await call(clear, cookie))[0].startswith("session=null;")
    assert await redis_client.exists("session:sid") == 0
    await store.aclose()


async def test_two_app_instances_share_sessions_through_one_redis(redis_url: str) -> None:
    # Two machines: separate middleware instances, separate connection pools, same secret.
    machine_a, machine_b = RedisStore(redis_url), RedisStore(redis_url)

    def on(store: RedisStore, action: Any) -> SessionMiddleware:
        return SessionMiddleware(app_doing(action), secret_key="shared", store=store)

    cookie = cookie_pair(await call(on(machine_a, put_user)))
    assert result(await call(on(machine_b, read), cookie)) == {"user": "ada"}
    await call(on(machine_b, lambda s: s.update(cart=[1])), cookie)
    assert result(await call(on(machine_a, read), cookie)) == {"user": "ada", "cart": [1]}
    new_cookie = cookie_pair(await call(on(machine_a, lambda s: s.regenerate()), cookie))
    assert result(await call(on(machine_b, read), cookie)) == {}
    assert result(await call(on(machine_b, read), new_cookie)) == {"user": "ada", "cart": [1]}
    await call(on(machine_b, lambda s: s.clear()), new_cookie)
    assert result(await call(on(machine_a, read), new_cookie)) == {}
    await machine_a.aclose()
    await machine_b.aclose()


async def test_a_cleared_session_is_not_written_back_by_another_machine(
    redis_url: str, redis_client: Any
) -> None:
    store = RedisStore(client=redis_client)
    cookie = cookie_pair(
        await call(SessionMiddleware(app_doing(put_user), secret_key="s", store=store))
    )

    def logout_elsewhere_then_write(session: Session) -> None:
        session["cart"] = [1]

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await redis_client.flushdb()  # another machine logs the visitor out meanwhile
        await app_doing(logout_elsewhere_then_write)(scope, receive, send)

    recorded = await call(SessionMiddleware(app, secret_key="s", store=store), cookie)
    assert set_cookies(recorded)[0].startswith("session=null;")
    assert await redis_client.keys("*") == []


async def test_an_app_owned_client_is_left_open() -> None:
    import redis.asyncio

    with redis_server() as (url, _):
        client = redis.asyncio.from_url(url)
        store = RedisStore(client=client)
        await store.aclose()
        assert await client.ping()
        await client.aclose()


async def test_redis_stopped_mid_run_fails_loudly_instead_of_emptying_the_session() -> None:
    with redis_server() as (url, process):
        store = RedisStore(url, timeout=1)
        options = {"secret_key": "s", "store": store}
        cookie = cookie_pair(await call(SessionMiddleware(app_doing(put_user), **options)))
        reached: list[bool] = []

        def app_action(session: Session) -> None:
            reached.append(True)

        process.terminate()
        process.wait(10)
        with pytest.raises(SessionStoreError, match="failed to read a session"):
            await call(SessionMiddleware(app_doing(app_action), **options), cookie)
        assert reached == []  # the app never ran on a session it believed empty
        await store.aclose()


async def test_redis_dying_before_the_write_fails_the_response() -> None:
    with redis_server() as (url, process):
        store = RedisStore(url, timeout=1)
        options = {"secret_key": "s", "store": store}
        cookie = cookie_pair(await call(SessionMiddleware(app_doing(put_user), **options)))

        def stop_redis_then_write(session: Session) -> None:
            process.terminate()
            process.wait(10)
            session["cart"] = [1]

        with pytest.raises(SessionStoreError, match="failed to update a session"):
            await call(SessionMiddleware(app_doing(stop_redis_then_write), **options), cookie)
        with pytest.raises(SessionStoreError, match="failed to create a session"):
            await call(SessionMiddleware(app_doing(put_user), **options))
        with pytest.raises(SessionStoreError, match="failed to delete a session"):
            await store.delete("x")
        await store.aclose()


async def test_a_frozen_redis_gives_a_timeout_error_not_a_hang() -> None:
    with redis_server() as (url, process):
        store = RedisStore(url, timeout=0.3)
        options = {"secret_key": "s", "store": store, "clock": Clock()}
        cookie = cookie_pair(await call(SessionMiddleware(app_doing(put_user), **options)))
        os.kill(process.pid, signal.SIGSTOP)
        try:
            with pytest.raises(SessionStoreError, match="Timeout"):
                await call(SessionMiddleware(app_doing(read), **options), cookie)
        finally:
            os.kill(process.pid, signal.SIGCONT)
        await store.aclose()
        # Nothing was lost: once Redis answers again the session is intact.
        store = RedisStore(url)
        options["store"] = store
        assert result(await call(SessionMiddleware(app_doing(read), **options), cookie)) == {
            "user": "ada"
        }
        await store.aclose()


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        pytest.param({}, "exactly one of url or client", id="neither"),
        pytest.param({"url": "redis://x", "client": object()}, "exactly one", id="both"),
        pytest.param({"url": "redis://x", "timeout": 0}, "timeout must be", id="zero timeout"),
        pytest.param({"url": "redis://x", "timeout": True}, "timeout must be", id="bool timeout"),
    ],
)
def test_bad_arguments_are_refused(arguments: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RedisStore(**arguments)
