"""RateLimitMiddleware's keys (client address, IPv6 grouping, API key, session, callables) and
per-route policies, with the traps about who shares a bucket (limits.md §1.4: 1, 2, 3, 9, 10,
11, 16, 17)."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from middlewares import RateLimit, RateLimitMiddleware
from middlewares._types import Receive, Scope, Send
from middlewares.rate_limit import (
    SCOPE_KEY,
    RateLimitDecision,
    group_address,
    header_key,
    session_key,
)
from middlewares.stores import MemoryRateLimitStore
from middlewares.testing import http_scope, run_asgi

from .test_rate_limit import Clock, hit, limiter, ok_app, statuses

pytestmark = pytest.mark.anyio


# --- keys ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "key"),
    [
        pytest.param("198.51.100.4", "198.51.100.4", id="ipv4 as is"),
        pytest.param("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64", id="ipv6 grouped by /64"),
        pytest.param("::ffff:198.51.100.4", "198.51.100.4", id="ipv4-mapped ipv6 is ipv4"),
        pytest.param("testclient", "testclient", id="a name stays a name"),
    ],
)
def test_client_addresses_are_grouped(host: str, key: str) -> None:
    assert group_address(host) == key


def test_masks_group_wider() -> None:
    assert group_address("198.51.100.77", 24, 64) == "198.51.100.0/24"
    assert group_address("2001:db8::1", 32, 48) == "2001:db8::/48"


@given(st.text(max_size=300))
def test_any_client_string_gives_a_bounded_key(host: str) -> None:
    assert len(group_address(host)) <= 128


async def test_ipv6_clients_in_one_64_share_a_bucket_and_the_next_64_does_not() -> None:
    app = limiter(application_limits=["1/minute"])
    assert (await hit(app, client="2001:db8:0:1::1")).status == 200
    assert (await hit(app, client="2001:db8:0:1:ffff::9")).status == 429
    assert (await hit(app, client="2001:db8:0:2::1")).status == 200


@pytest.mark.parametrize(
    "rotating",
    [
        pytest.param("x-forwarded-for", id="X-Forwarded-For"),
        pytest.param("x-real-ip", id="X-Real-IP"),
        pytest.param("forwarded", id="Forwarded"),
    ],
)
async def test_trap1_untrusted_client_rotating_forwarding_headers_gets_429_at_n_plus_1(
    rotating: str,
) -> None:
    app = limiter(application_limits=["3/minute"])
    results = []
    for n in range(4):
        value = f"for=10.0.0.{n}" if rotating == "forwarded" else f"10.0.0.{n}"
        results.append((await hit(app, headers={rotating: value})).status)
    assert results == [200, 200, 200, 429]


async def test_trap1_trap2_two_clients_resolved_by_a_trusted_proxy_get_two_buckets() -> None:
    # ProxyHeadersMiddleware, outside, has put each real client into scope["client"]; the
    # connection came from the proxy for both, and that address is never the key.
    app = limiter(application_limits=["1/minute"])
    alice = await hit(app, client="198.51.100.1", headers={"x-forwarded-for": "198.51.100.1"})
    bob = await hit(app, client="198.51.100.2", headers={"x-forwarded-for": "198.51.100.2"})
    assert (alice.status, bob.status) == (200, 200)
    assert (await hit(app, client="198.51.100.1")).status == 429


async def test_trap3_lan_client_without_x_real_ip_is_keyed_by_its_own_address() -> None:
    seen: list[RateLimitDecision] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope[SCOPE_KEY])
        await ok_app(scope, receive, send)

    response = await hit(limiter(app, application_limits=["5/minute"]), client="192.168.1.5")
    assert response.status == 200
    assert seen[0].key == "192.168.1.5"


async def test_api_key_header_keys_by_a_digest_and_falls_back_to_the_address() -> None:
    store = MemoryRateLimitStore(clock=Clock())
    app = RateLimitMiddleware(
        ok_app, application_limits=["1/minute"], key_func=header_key("X-API-Key"), store=store
    )
    assert (await hit(app, headers={"accept": "*/*", "x-api-key": "k1"})).status == 200
    assert (await hit(app, headers={"x-api-key": "k2"})).status == 200
    assert (await hit(app, headers={"x-api-key": "k1"})).status == 429
    assert (await hit(app)).status == 200  # no key: the client address, a bucket of its own
    huge = "x" * 100_000
    assert (await hit(app, headers={"x-api-key": huge})).status == 200
    assert all(len(name) < 200 for name in store._entries)
    assert not any("k1" in name for name in store._entries)


def test_header_key_needs_a_header_name() -> None:
    with pytest.raises(ValueError, match="header name"):
        header_key("x api key")


async def test_session_key_counts_a_signed_in_user_across_addresses() -> None:
    app = limiter(application_limits=["1/minute"], key_func=session_key("user"))

    async def as_user(user: str | None, client: str) -> int:
        scope = http_scope(client=(client, 1))
        scope["session"] = {} if user is None else {"user": user}
        return (await run_asgi(app, scope)).status

    assert await as_user("ada", "198.51.100.1") == 200
    assert await as_user("ada", "198.51.100.2") == 429
    assert await as_user(None, "198.51.100.1") == 200


async def test_async_key_functions_and_long_keys_are_digested() -> None:
    async def tenant(scope: Scope) -> str:
        return "tenant-" + "t" * 500

    store = MemoryRateLimitStore(clock=Clock())
    app = RateLimitMiddleware(ok_app, application_limits=["1/minute"], key_func=tenant, store=store)
    assert await statuses(app, 2) == [200, 429]
    assert all(len(name) < 200 for name in store._entries)


async def test_a_request_without_client_address_is_not_limited_and_warned_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = limiter(application_limits=["1/minute"])
    assert await statuses(app, 3, client=None) == [200, 200, 200]
    warnings = [r for r in caplog.records if "no client address" in r.getMessage()]
    assert len(warnings) == 1


# --- routes, exclusions, costs ---------------------------------------------------------------


async def test_trap9_an_application_limit_applies_with_no_per_route_setup() -> None:
    inner = Starlette(routes=[Route("/a", lambda r: PlainTextResponse("a"))])
    app = limiter(inner, application_limits=["2/minute"])
    assert [(await hit(app, "/a")).status for _ in range(3)] == [200, 200, 429]


async def test_trap10_concrete_paths_of_one_route_template_share_a_bucket() -> None:
    app = limiter(route_limits={"/items/{id}": "1/minute"})
    assert (await hit(app, "/items/1")).status == 200
    assert (await hit(app, "/items/2")).status == 429
    assert (await hit(app, "/other")).status == 200  # no policy: unlimited, no headers
    assert (await hit(app, "/other")).header("ratelimit") is None


async def test_trap11_requests_refused_by_the_burst_policy_do_not_consume_the_daily_quota() -> None:
    clock = Clock()
    app = limiter(
        clock=clock,
        application_limits=[
            RateLimit("3/5 seconds", name="burst"),
            RateLimit("100/day", name="daily"),
        ],
    )
    assert await statuses(app, 10) == [200] * 3 + [429] * 7
    clock.now += 5
    response = await hit(app)
    assert response.status == 200
    assert '"daily";r=96' in (response.header("ratelimit") or "")


async def test_trap16_retry_after_is_the_remaining_wait_and_the_block_is_scoped_per_policy() -> (
    None
):
    clock = Clock()
    app = limiter(clock=clock, route_limits={"/login": "1/minute", "/api/*": "100/minute"})
    await hit(app, "/login")
    assert (await hit(app, "/login")).header("retry-after") == "60"
    clock.now += 45
    assert (await hit(app, "/login")).header("retry-after") == "15"
    assert (await hit(app, "/api/items")).status == 200


async def test_trap17_two_routes_with_the_same_rate_never_share_state() -> None:
    same = RateLimit("2/minute", name="strict")
    app = limiter(route_limits={"/login": same, "/api/*": same, "/signup": "2/minute"})
    assert await statuses(app, 3, path="/login") == [200, 200, 429]
    assert await statuses(app, 3, path="/api/x") == [200, 200, 429]
    assert await statuses(app, 3, path="/signup") == [200, 200, 429]


async def test_two_middlewares_with_different_policies_on_one_store_are_independent() -> None:
    store = MemoryRateLimitStore(clock=Clock())
    login = RateLimitMiddleware(ok_app, application_limits=["1/minute"], store=store)
    api = RateLimitMiddleware(ok_app, application_limits=["2/minute"], store=store)
    assert await statuses(login, 2) == [200, 429]
    assert await statuses(api, 3) == [200, 200, 429]


async def test_route_patterns_may_be_regexes_and_the_first_match_wins() -> None:
    app = limiter(
        route_limits={re.compile(r"/users/\d+"): "1/minute", "/users/*": "5/minute"},
    )
    assert await statuses(app, 2, path="/users/7") == [200, 429]
    assert await statuses(app, 2, path="/users/me") == [200, 200]


async def test_excluded_paths_are_never_limited_or_decorated() -> None:
    app = limiter(application_limits=["1/minute"], exclude_paths=["/health"])
    for _ in range(3):
        response = await hit(app, "/health")
        assert response.status == 200
        assert response.header("ratelimit") is None


async def test_weights_charge_a_request_several_times() -> None:
    def cost(scope: Scope) -> int:
        return 5 if scope["path"] == "/export" else 1

    app = limiter(application_limits=["10/minute"], cost=cost)
    assert await statuses(app, 2, path="/export") == [200, 200]
    assert (await hit(app, "/")).status == 429


async def test_a_request_costing_more_than_the_burst_can_never_pass() -> None:
    clock = Clock()
    app = limiter(clock=clock, application_limits=["10/minute"], cost=lambda scope: 12)
    assert (await hit(app)).status == 429
    clock.now += 3600
    assert (await hit(app)).status == 429


async def test_a_cost_callable_returning_nonsense_is_a_clear_error() -> None:
    app = limiter(application_limits=["10/minute"], cost=lambda scope: 0)
    with pytest.raises(RuntimeError, match="cost callable"):
        await hit(app)
