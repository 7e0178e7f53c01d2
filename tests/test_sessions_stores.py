"""Server-side sessions on MemoryStore: ids, fixation, regeneration, clearing, races, eviction."""

from __future__ import annotations

from base64 import b64encode
from itertools import count
from typing import Any

import anyio
import itsdangerous
import pytest
from hypothesis import given
from hypothesis import strategies as st

from middlewares._core.signing import KeyRing
from middlewares._types import Receive, Scope, Send
from middlewares.sessions import Session, SessionMiddleware, SessionStoreError
from middlewares.stores import MemoryStore
from middlewares.testing import http_scope, run_asgi

from .stores.helpers import Clock, app_doing, call, cookie_pair, result, set_cookies

pytestmark = [
    pytest.mark.anyio,
    # Short keys keep these tests readable; the warning itself is tested in test_sessions_compat.
    pytest.mark.filterwarnings("ignore:secret_key has a key shorter:UserWarning"),
]


def sequential_ids() -> Any:
    numbers = count(1)
    return lambda: f"id{next(numbers)}"


class Site:
    """One app with a memory store, a fake clock and predictable ids."""

    def __init__(self, **options: Any) -> None:
        self.clock = Clock()
        self.store = MemoryStore(clock=self.clock)
        self.options = {
            "secret_key": "secret",
            "store": self.store,
            "clock": self.clock,
            "id_factory": sequential_ids(),
            **options,
        }

    def app(self, action: Any = None) -> SessionMiddleware:
        return SessionMiddleware(app_doing(action), **self.options)

    async def login(self) -> str:
        return cookie_pair(await call(self.app(put_user), None))


def put_user(session: Session) -> None:
    session["user"] = "ada"


def read(session: Session) -> dict[str, Any]:
    return dict(session)


def signed(session_id: str, key: str = "secret") -> str:
    ring = KeyRing([key.encode()], salt=b"middlewares.sessions")
    return "session=" + ring.sign(session_id.encode()).decode()


async def test_the_cookie_holds_only_a_signed_id_and_the_data_stays_on_the_server() -> None:
    site = Site()
    cookie = await site.login()
    assert cookie == signed("id1")
    assert "ada" not in cookie
    assert await site.store.load("id1") == b'1700000000.1700000000.{"user":"ada"}'
    assert result(await call(site.app(read), cookie)) == {"user": "ada"}


async def test_anonymous_visitors_create_no_store_entry() -> None:
    site = Site()
    for _ in range(5):
        recorded = await call(site.app(lambda s: s.get("user")))
        assert set_cookies(recorded) == []
    assert len(site.store) == 0


async def test_reading_does_not_write_to_the_store() -> None:
    site = Site()
    cookie = await site.login()
    before = await site.store.load("id1")
    site.clock.advance(10)
    assert set_cookies(await call(site.app(read), cookie)) == []
    assert await site.store.load("id1") == before


async def test_session_id_is_visible_to_the_app_once_issued() -> None:
    site = Site()
    cookie = await site.login()
    assert result(await call(site.app(lambda s: s.id), cookie)) == "id1"


async def test_an_id_the_store_never_issued_is_not_adopted() -> None:
    site = Site()
    planted = signed("attacker-chosen")
    recorded = await call(site.app(put_user), planted)
    assert cookie_pair(recorded) == signed("id1")
    assert await site.store.load("attacker-chosen") is None


async def test_an_unsigned_or_wrongly_signed_id_is_ignored() -> None:
    site = Site()
    await site.login()
    for cookie in ["session=id1", signed("id1", key="other"), "session=id1.AAAA"]:
        assert result(await call(site.app(read), cookie)) == {}


async def test_regenerate_issues_a_new_id_and_deletes_the_old_entry() -> None:
    site = Site()
    old_cookie = await site.login()
    recorded = await call(site.app(lambda s: s.regenerate()), old_cookie)
    assert cookie_pair(recorded) == signed("id2")
    assert await site.store.load("id1") is None
    assert result(await call(site.app(read), old_cookie)) == {}
    assert result(await call(site.app(read), signed("id2"))) == {"user": "ada"}


async def test_clearing_deletes_the_entry_and_expires_the_cookie_with_path_and_domain() -> None:
    site = Site(path="/shop", domain="example.com")
    cookie = await site.login()
    (header,) = set_cookies(await call(site.app(lambda s: s.clear()), cookie))
    assert header.startswith("session=null; path=/shop; expires=Thu, 01 Jan 1970 00:00:00 GMT;")
    assert header.endswith("; domain=example.com")
    assert len(site.store) == 0
    assert result(await call(site.app(read), cookie)) == {}


async def test_a_slow_request_cannot_bring_back_a_session_another_request_cleared() -> None:
    site = Site()
    cookie = await site.login()
    slow_has_read = anyio.Event()
    logout_done = anyio.Event()

    async def slow_app(scope: Scope, receive: Receive, send: Send) -> None:
        scope["session"]["cart"] = [1]
        slow_has_read.set()
        await logout_done.wait()
        await app_doing()(scope, receive, send)

    slow = SessionMiddleware(slow_app, **site.options)
    responses: dict[str, Any] = {}

    async def run_slow() -> None:
        responses["slow"] = await call(slow, cookie)

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(run_slow)
        await slow_has_read.wait()
        responses["logout"] = await call(site.app(lambda s: s.clear()), cookie)
        logout_done.set()
    assert len(site.store) == 0
    (header,) = set_cookies(responses["slow"])
    assert header.startswith("session=null;")
    assert result(await call(site.app(read), cookie)) == {}


async def test_expired_store_entry_is_not_resurrected_by_a_write() -> None:
    site = Site(max_age=100)
    cookie = await site.login()
    site.clock.advance(101)
    recorded = await call(site.app(put_user), cookie)
    assert cookie_pair(recorded) == signed("id2")
    assert await site.store.load("id1") is None


async def test_store_ttl_follows_max_age_idle_and_absolute_limits() -> None:
    site = Site(max_age=1000, idle_timeout=500, rolling=100, absolute_timeout=2000)
    cookie = await site.login()
    site.clock.advance(499)
    assert result(await call(site.app(read), cookie)) == {"user": "ada"}  # renewed: 500 more
    site.clock.advance(499)
    assert await site.store.load("id1") is not None
    site.clock.advance(2)
    assert await site.store.load("id1") is None


async def test_a_session_written_near_its_absolute_limit_gets_a_short_ttl() -> None:
    site = Site(absolute_timeout=1000, rolling=0)
    cookie = await site.login()
    site.clock.advance(990)
    await call(site.app(read), cookie)
    site.clock.advance(11)
    assert await site.store.load("id1") is None


async def test_a_corrupted_store_entry_gives_an_empty_session() -> None:
    site = Site()
    cookie = await site.login()
    await site.store.update("id1", b"garbage", 100)
    assert result(await call(site.app(read), cookie)) == {}


async def test_a_starlette_cookie_moves_into_the_store_on_its_next_write() -> None:
    site = Site()
    token = itsdangerous.TimestampSigner("secret").sign(b64encode(b'{"user": "ada"}')).decode()
    site.clock.now = int(itsdangerous.TimestampSigner("secret").get_timestamp()) + 1
    assert result(await call(site.app(read), f"session={token}")) == {"user": "ada"}
    recorded = await call(site.app(lambda s: s.update(cart=[])), f"session={token}")
    assert cookie_pair(recorded) == signed("id1")
    assert result(await call(site.app(read), signed("id1"))) == {"user": "ada", "cart": []}


async def test_an_id_factory_collision_never_overwrites_another_session() -> None:
    ids = iter(["same", "same", "fresh"])
    site = Site(id_factory=lambda: next(ids))
    await site.login()
    assert cookie_pair(await call(site.app(put_user))) == signed("fresh")


async def test_an_id_factory_that_keeps_colliding_fails_loudly() -> None:
    site = Site(id_factory=lambda: "same")
    await site.login()
    with pytest.raises(SessionStoreError, match="3 session ids already in use"):
        await call(site.app(put_user))


async def test_memory_store_is_bounded_and_evicts_the_least_recently_written() -> None:
    clock = Clock()
    store = MemoryStore(max_entries=2, clock=clock)
    assert await store.create("a", b"1", 100)
    assert await store.create("b", b"2", 100)
    assert await store.update("a", b"1b", 100)
    assert await store.create("c", b"3", 100)
    assert len(store) == 2
    assert await store.load("b") is None
    assert await store.load("a") == b"1b"


async def test_memory_store_expires_entries_and_sweeps_them_on_create() -> None:
    clock = Clock()
    store = MemoryStore(clock=clock)
    await store.create("a", b"1", 10)
    await store.create("b", b"2", 50)
    clock.advance(20)
    assert await store.load("a") is None
    await store.create("c", b"3", 10)
    clock.advance(40)
    await store.create("d", b"4", 10)
    assert len(store) == 1
    assert not await store.update("c", b"x", 10)


async def test_memory_store_create_refuses_a_live_id_and_update_a_missing_one() -> None:
    store = MemoryStore()
    assert await store.create("a", b"1", 10)
    assert not await store.create("a", b"2", 10)
    assert not await store.update("b", b"2", 10)
    await store.delete("a")
    await store.delete("a")
    assert await store.load("a") is None


@pytest.mark.parametrize("max_entries", [0, True, 1.5])
def test_memory_store_refuses_bad_bounds(max_entries: Any) -> None:
    with pytest.raises(ValueError, match="max_entries must be an integer >= 1"):
        MemoryStore(max_entries=max_entries)


async def test_a_store_cookie_over_the_limit_is_impossible_but_a_long_name_is_checked() -> None:
    site = Site(session_cookie="s" * 4000)
    with pytest.raises(Exception, match="over the 4096 bytes"):
        await call(site.app(put_user))


async def test_a_cookie_session_is_read_when_a_store_is_added() -> None:
    cookie_only = SessionMiddleware(app_doing(put_user), secret_key="secret", clock=Clock())
    cookie = cookie_pair(await call(cookie_only))
    site = Site()
    assert result(await call(site.app(read), cookie)) == {"user": "ada"}
    scope = http_scope(headers={"cookie": cookie})
    recorded = await run_asgi(site.app(lambda s: s.update(more=1)), scope)
    assert cookie_pair(recorded) == signed("id1")


async def test_the_example_shop_keeps_a_cart_across_login_and_forgets_it_on_logout() -> None:
    import httpx

    from examples.sessions import app

    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://testserver"
    ) as client:
        await client.post("/cart/apple")
        anonymous = client.cookies["session"]
        await client.post("/login/ada")
        assert client.cookies["session"] != anonymous
        assert (await client.get("/")).json() == {"user": "ada", "cart": ["apple"]}
        await client.post("/logout")
        assert (await client.get("/")).json() == {"user": None, "cart": []}


async def test_clearing_a_migrated_cookie_session_in_store_mode_expires_the_cookie() -> None:
    cookie_only = SessionMiddleware(app_doing(put_user), secret_key="secret", clock=Clock())
    cookie = cookie_pair(await call(cookie_only))
    site = Site()
    (header,) = set_cookies(await call(site.app(lambda s: s.clear()), cookie))
    assert header.startswith("session=null;")
    assert len(site.store) == 0


async def test_a_first_visit_knows_its_session_id_before_the_response() -> None:
    site = Site()

    def log_id_then_write(session: Session) -> Any:
        seen = session.id
        session["user"] = "ada"
        return seen

    recorded = await call(site.app(log_id_then_write))
    assert result(recorded) == "id1"
    assert cookie_pair(recorded) == signed("id1")


async def test_session_id_after_regenerate_is_the_new_one() -> None:
    site = Site()
    cookie = await site.login()

    def regenerate(session: Session) -> Any:
        before = session.id
        session.regenerate()
        return [before, session.id, session.id]

    recorded = await call(site.app(regenerate), cookie)
    assert result(recorded) == ["id1", "id2", "id2"]
    assert cookie_pair(recorded) == signed("id2")


async def test_asking_for_the_id_alone_creates_nothing() -> None:
    site = Site()
    recorded = await call(site.app(lambda s: s.id))
    assert result(recorded) == "id1"
    assert set_cookies(recorded) == []
    assert len(site.store) == 0


@given(st.binary(max_size=120))
async def test_arbitrary_cookie_bytes_never_raise_with_a_store(raw: bytes) -> None:
    site = Site()
    scope = http_scope(headers=[(b"cookie", b"session=" + raw)])
    assert result(await run_asgi(site.app(read), scope)) == {}
