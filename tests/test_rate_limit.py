"""RateLimitMiddleware with the in-memory store: policies and GCRA, headers and refusals, what
the other layers see, streaming and WebSockets (limits.md §1.4 traps 5, 6, 7, 14, 15)."""

from __future__ import annotations

import contextlib
import json
import pathlib
import re
from typing import Any

import anyio
import pytest
from hypothesis import given
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.responses import FileResponse, StreamingResponse
from starlette.routing import Route

from middlewares import RateLimit, RateLimitMiddleware
from middlewares._core.outcome import get_outcome
from middlewares._types import ASGIApp, Receive, Scope, Send
from middlewares.rate_limit import (
    SCOPE_KEY,
    charge_limits,
    with_rate_limit_headers,
)
from middlewares.stores import MemoryRateLimitStore
from middlewares.testing import Recorded, http_scope, run_asgi

pytestmark = pytest.mark.anyio

CLIENT = "203.0.113.7"


class Clock:
    """A monotonic clock that only moves when told to."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def ok_app(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


def limiter(app: ASGIApp = ok_app, clock: Clock | None = None, **options: Any) -> Any:
    store = MemoryRateLimitStore(clock=clock or Clock())
    return RateLimitMiddleware(app, store=store, **options)


async def hit(
    app: ASGIApp, path: str = "/", client: str | None = CLIENT, headers: Any = ()
) -> Recorded:
    scope = http_scope(path=path, client=None if client is None else (client, 5000))
    scope["headers"] += http_scope(headers=headers)["headers"]
    return await run_asgi(app, scope)


async def statuses(app: ASGIApp, count: int, **options: Any) -> list[int]:
    return [(await hit(app, **options)).status for _ in range(count)]


# --- policies and GCRA ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rate", "quota", "window"),
    [
        pytest.param("100/minute", 100, 60, id="per minute"),
        pytest.param("1000 per day", 1000, 86400, id="per with spaces"),
        pytest.param("5/10 seconds", 5, 10, id="several units"),
        pytest.param(" 3 / Hour ", 3, 3600, id="spaces and capitals"),
    ],
)
def test_rates_are_read_like_limits_writes_them(rate: str, quota: int, window: int) -> None:
    limit = RateLimit(rate)
    assert (limit.quota, limit.window, limit.burst) == (quota, window, quota)
    assert limit.name == rate.strip()
    assert repr(limit) == (
        f"RateLimit({quota}/{window}s, burst={quota}, name={rate.strip()!r}, strategy='gcra')"
    )


@pytest.mark.parametrize(
    ("rate", "options", "says"),
    [
        pytest.param("100", {}, "rate must look like", id="no unit"),
        pytest.param("ten/minute", {}, "rate must look like", id="words"),
        pytest.param("0/minute", {}, "at least 1", id="zero quota"),
        pytest.param("5/0 seconds", {}, "at least 1", id="zero window"),
        pytest.param("5/week", {}, "rate must look like", id="unknown unit"),
        pytest.param("5/minute", {"burst": 0}, "burst must be", id="zero burst"),
        pytest.param("5/minute", {"strategy": "leaky"}, "strategy must be", id="unknown strategy"),
        pytest.param(
            "5/minute", {"strategy": "fixed-window", "burst": 2}, "GCRA only", id="fixed burst"
        ),
        pytest.param("5/minute", {"name": "caf\u00e9"}, "printable ASCII", id="non-ascii name"),
        pytest.param("5/minute", {"name": "a\r\nb"}, "printable ASCII", id="crlf in name"),
    ],
)
def test_malformed_policies_fail_naming_the_argument(
    rate: str, options: dict[str, Any], says: str
) -> None:
    with pytest.raises(ValueError, match=says):
        RateLimit(rate, **options)


@given(st.text())
def test_any_rate_text_is_a_policy_or_a_value_error(text: str) -> None:
    with contextlib.suppress(ValueError):
        RateLimit(text)


def test_gcra_allows_the_burst_then_one_request_per_interval() -> None:
    limit = RateLimit("4/minute")  # one request every 15 s, four at once
    tats: list[float | None] = [None]
    allowed_at = []
    for now in [0, 0, 0, 0, 0, 14, 15, 29, 30]:
        allowed, new, _states = charge_limits(tats, now, [limit], 1)
        allowed_at.append(allowed)
        if allowed:
            tats = list(new)
    assert allowed_at == [True, True, True, True, False, False, True, False, True]


def test_gcra_weights_cost_several_requests_and_a_refusal_reports_the_wait() -> None:
    limit = RateLimit("10/10 seconds")
    allowed, tats, (state,) = charge_limits([None], 0.0, [limit], 8)
    assert allowed
    assert state.remaining == 2
    assert state.reset == pytest.approx(8)
    allowed, _, (state,) = charge_limits(list(tats), 0.0, [limit], 3)
    assert not allowed
    assert state.remaining == 2  # nothing was charged
    assert state.retry_after == pytest.approx(1)


def test_a_fixed_window_counts_from_zero_in_each_window_aligned_to_the_clock() -> None:
    limit = RateLimit("3/minute", strategy="fixed-window")
    values: list[float | None] = [None]
    outcomes = []
    for now in [100, 110, 119, 119.5, 120, 121, 122, 123]:
        allowed, new, (state,) = charge_limits(values, now, [limit], 1)
        outcomes.append((allowed, state.remaining, state.reset, state.retry_after))
        if allowed:
            values = list(new)
    assert outcomes == [
        (True, 2, 20, 0),
        (True, 1, 10, 0),
        (True, 0, 1, 0),
        (False, 0, 0.5, 0.5),  # until the next window
        (True, 2, 60, 0),  # a new window: 2 x quota across the boundary, as fixed windows do
        (True, 1, 59, 0),
        (True, 0, 58, 0),
        (False, 0, 57, 57),
    ]


async def test_fixed_window_and_gcra_policies_charge_together() -> None:
    clock = Clock()
    clock.now = 30.0
    app = limiter(
        clock=clock,
        application_limits=[
            RateLimit("2/minute", strategy="fixed-window", name="window"),
            RateLimit("10/minute", name="smooth"),
        ],
    )
    first = await hit(app)
    assert first.header("ratelimit") == '"window";r=1;t=30, "smooth";r=9;t=6'
    assert await statuses(app, 2) == [200, 429]
    clock.now = 60.0
    assert (await hit(app)).status == 200


def test_policies_with_the_same_name_on_one_request_are_refused() -> None:
    with pytest.raises(ValueError, match="distinct names"):
        RateLimitMiddleware(
            ok_app,
            application_limits=["5/minute"],
            route_limits={"/login": RateLimit("10/hour", name="5/minute")},
        )


@pytest.mark.parametrize(
    ("options", "error", "says"),
    [
        pytest.param({"application_limits": "5/minute"}, TypeError, "list", id="string limits"),
        pytest.param({"application_limits": [5]}, TypeError, "a policy", id="not a policy"),
        pytest.param({"ipv6_mask": 0}, ValueError, "ipv6_mask", id="ipv6 mask 0"),
        pytest.param({"ipv4_mask": 33}, ValueError, "ipv4_mask", id="ipv4 mask 33"),
        pytest.param({"cost": 0}, ValueError, "cost", id="cost 0"),
        pytest.param({"status_code": 200}, ValueError, "status_code", id="status 200"),
        pytest.param({"status_code": "429"}, ValueError, "status_code", id="status string"),
        pytest.param({"error_format": "html"}, ValueError, "error_format", id="html errors"),
        pytest.param({"store_timeout": 0}, ValueError, "store_timeout", id="zero timeout"),
        pytest.param({"fallback_workers": 0}, ValueError, "fallback_workers", id="0 workers"),
        pytest.param({"breaker_cooldown": -1}, ValueError, "breaker_cooldown", id="negative"),
        pytest.param({"route_limits": {"/a": []}}, ValueError, "exclude_paths", id="empty route"),
        pytest.param(
            {"application_limits": []}, ValueError, "would limit nothing", id="no policy at all"
        ),
    ],
)
def test_bad_configuration_fails_at_construction(
    options: dict[str, Any], error: type[Exception], says: str
) -> None:
    with pytest.raises(error, match=says):
        RateLimitMiddleware(ok_app, **{"application_limits": ["5/minute"], **options})


# --- refusals and headers --------------------------------------------------------------------


async def test_trap14_refusal_is_429_with_integer_retry_after_and_a_short_body() -> None:
    app = limiter(application_limits=["2/minute"])
    assert await statuses(app, 2) == [200, 200]
    refused = await hit(app)
    assert refused.status == 429
    assert refused.header("retry-after") == "30"
    assert refused.body == b"Too Many Requests"
    assert refused.header("content-type") == "text/plain; charset=utf-8"


async def test_trap6_every_refusal_carries_retry_after_of_at_least_one_second() -> None:
    clock = Clock()
    app = limiter(clock=clock, application_limits=["1000/second"])
    for _ in range(1000):
        await hit(app)
    for _ in range(5):
        refused = await hit(app)
        assert refused.status == 429
        assert re.fullmatch(r"[1-9][0-9]*", refused.header("retry-after") or "")
        clock.now += 0.0001  # less than a request's worth refilled: still refused


async def test_problem_json_refusal_names_the_policy_and_the_wait() -> None:
    app = limiter(
        application_limits=[RateLimit("1/minute", name="burst")], error_format="problem+json"
    )
    await hit(app)
    refused = await hit(app)
    assert refused.header("content-type") == "application/problem+json"
    problem = json.loads(refused.body)
    assert problem["status"] == 429
    assert problem["retry_after"] == 60
    assert "burst" in problem["detail"]


async def test_status_code_is_configurable() -> None:
    app = limiter(application_limits=["1/minute"], status_code=503)
    assert await statuses(app, 2) == [200, 503]


async def test_ietf_headers_on_every_limited_response() -> None:
    clock = Clock()
    app = limiter(
        clock=clock,
        application_limits=[RateLimit("100/minute", burst=10, name="burst")],
        route_limits={"/search": RateLimit("1000/day", name="daily")},
    )
    first = await hit(app, "/search")
    assert first.header("ratelimit-policy") == '"burst";q=100;w=60, "daily";q=1000;w=86400'
    assert first.header("ratelimit") == '"burst";r=9;t=1, "daily";r=999;t=87'
    other = await hit(app, "/")
    assert other.header("ratelimit-policy") == '"burst";q=100;w=60'
    assert other.header("ratelimit") == '"burst";r=8;t=2'


async def test_legacy_x_ratelimit_headers_are_an_opt_in_alias_for_the_tightest_policy() -> None:
    plain = await hit(limiter(application_limits=["5/minute"]))
    assert plain.header("x-ratelimit-limit") is None
    app = limiter(
        application_limits=["5/minute", RateLimit("2/minute", name="tight")],
        legacy_headers=True,
        headers_enabled=False,
    )
    response = await hit(app)
    assert response.header("ratelimit") is None
    assert (
        response.header("x-ratelimit-limit"),
        response.header("x-ratelimit-remaining"),
        response.header("x-ratelimit-reset"),
    ) == ("2", "1", "30")


async def test_trap7_each_field_once_when_a_global_and_a_route_policy_apply() -> None:
    app = limiter(
        application_limits=["1000/minute"],
        route_limits={"/items/*": "10/minute"},
        legacy_headers=True,
    )
    response = await hit(app, "/items/3")
    for name in ("ratelimit", "ratelimit-policy", "x-ratelimit-limit", "x-ratelimit-remaining"):
        assert len(response.header_all(name)) == 1, name
    assert response.header("ratelimit-policy") == '"1000/minute";q=1000;w=60, "10/minute";q=10;w=60'
    assert response.header("x-ratelimit-limit") == "10"


async def test_trap7_two_stacked_limiters_share_one_list_per_field() -> None:
    clock = Clock()
    inner = limiter(
        clock=clock, application_limits=[RateLimit("5/minute", name="login")], legacy_headers=True
    )
    outer = limiter(
        inner,
        clock=clock,
        application_limits=[RateLimit("100/minute", name="site")],
        legacy_headers=True,
    )
    response = await hit(outer)
    assert response.header_all("ratelimit-policy") == ['"login";q=5;w=60, "site";q=100;w=60']
    assert response.header_all("ratelimit") == ['"login";r=4;t=12, "site";r=99;t=1']
    assert response.header_all("x-ratelimit-remaining") == ["4"]
    assert response.header_all("x-ratelimit-limit") == ["5"]


@given(st.lists(st.tuples(st.binary(max_size=20), st.binary(max_size=20)), max_size=6))
def test_merging_into_any_inner_headers_never_raises(inner: list[tuple[bytes, bytes]]) -> None:
    added = [(b"ratelimit", b'"a";r=1;t=1'), (b"x-ratelimit-remaining", b"1")]
    merged = with_rate_limit_headers(inner, added)
    assert sum(1 for k, _ in merged if k.lower() == b"ratelimit") >= 1


async def test_an_app_without_the_limit_headers_keeps_its_own_headers_untouched() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        headers = [(b"content-type", b"text/plain"), (b"ratelimit", b'"inner";r=1;t=1')]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"ok"})

    response = await hit(limiter(app, application_limits=[RateLimit("3/minute", name="x")]))
    assert response.header("content-type") == "text/plain"
    assert response.header_all("ratelimit") == ['"inner";r=1;t=1, "x";r=2;t=20']


# --- what the app and the other layers see ---------------------------------------------------


async def test_the_decision_is_in_the_scope_and_a_refusal_is_recorded_as_limited() -> None:
    seen: list[Scope] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope)
        await ok_app(scope, receive, send)

    middleware = limiter(app, application_limits=[RateLimit("1/minute", name="m")])
    await hit(middleware)
    decision = seen[0][SCOPE_KEY]
    assert (decision.allowed, decision.key, decision.retry_after) == (True, CLIENT, 0)
    assert decision.states[0].remaining == 0
    scope = http_scope(client=(CLIENT, 1))
    await run_asgi(middleware, scope)
    assert get_outcome(scope) == "limited"
    assert scope[SCOPE_KEY].allowed is False
    assert len(seen) == 1  # the app never ran for the refused request


async def test_shadow_mode_logs_what_it_would_refuse_and_changes_nothing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level("INFO", logger="middlewares.rate_limit")
    app = limiter(application_limits=["1/minute"], shadow=True)
    responses = [await hit(app) for _ in range(3)]
    assert [r.status for r in responses] == [200, 200, 200]
    assert all(r.header("ratelimit") is None for r in responses)
    assert sum("would refuse" in r.getMessage() for r in caplog.records) == 2


async def test_trap15_a_refusal_answers_at_once_and_never_waits_for_the_window() -> None:
    app = limiter(application_limits=["1/hour"])
    await hit(app)
    with anyio.fail_after(5):  # a hang guard, not a timing target: the window is an hour
        assert (await hit(app)).header("retry-after") == "3600"


# --- streaming, files, websockets ------------------------------------------------------------


async def test_trap5_streaming_and_file_responses_pass_untouched(tmp_path: pathlib.Path) -> None:
    (tmp_path / "f.txt").write_bytes(b"file body")

    async def chunks() -> Any:
        for part in (b"one ", b"two ", b"three"):
            yield part

    inner = Starlette(
        routes=[
            Route("/stream", lambda r: StreamingResponse(chunks())),
            Route("/file", lambda r: FileResponse(tmp_path / "f.txt")),
        ]
    )
    app = limiter(inner, application_limits=["10/minute"])
    stream = await hit(app, "/stream")
    assert [c for c in stream.body_chunks if c] == [b"one ", b"two ", b"three"]
    assert len(stream.of_type("http.response.start")) == 1
    assert stream.header("ratelimit") == '"10/minute";r=9;t=6'
    file = await hit(app, "/file")
    assert file.body == b"file body"
    assert file.header("ratelimit") == '"10/minute";r=8;t=12'


async def test_trap6_a_dict_returning_fastapi_endpoint_gets_the_headers_too() -> None:
    from fastapi import FastAPI

    api = FastAPI()

    @api.get("/items")
    async def items() -> dict[str, list[int]]:
        return {"items": [1]}

    app = limiter(api, application_limits=["5/minute"])
    response = await hit(app, "/items")
    assert response.status == 200
    assert json.loads(response.body) == {"items": [1]}
    assert response.header("ratelimit") == '"5/minute";r=4;t=12'


async def test_websocket_handshakes_over_the_limit_are_refused_before_the_app() -> None:
    from middlewares.testing import websocket_scope

    accepted: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        accepted.append(scope["path"])
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.close", "code": 1000})

    middleware = limiter(app, application_limits=["1/minute"])
    denial_offered = {"websocket.http.response": {}}
    await run_asgi(middleware, websocket_scope("/ws"))
    closed = await run_asgi(middleware, websocket_scope("/ws", extensions=denial_offered))
    assert closed.messages == [{"type": "websocket.close", "code": 1008}]
    with_denial = limiter(app, application_limits=["1/minute"], websocket_denial_response=True)
    await run_asgi(with_denial, websocket_scope("/ws"))
    denial = await run_asgi(with_denial, websocket_scope("/ws", extensions=denial_offered))
    assert denial.status == 429
    assert denial.header("retry-after") == "60"
    assert denial.header("ratelimit") == '"1/minute";r=0;t=60'
    closed = await run_asgi(with_denial, websocket_scope("/ws"))  # the server offers none
    assert closed.messages == [{"type": "websocket.close", "code": 1008}]
    assert accepted == ["/ws", "/ws"]
    unlimited = limiter(app, application_limits=["1/minute"], limit_websockets=False)
    for _ in range(2):
        await run_asgi(unlimited, websocket_scope("/ws"))
    assert accepted == ["/ws", "/ws", "/ws", "/ws"]


async def test_a_handshake_whose_client_left_gets_nothing_sent() -> None:
    from middlewares.testing import websocket_scope

    store = MemoryRateLimitStore(clock=Clock())
    middleware = RateLimitMiddleware(ok_app, application_limits=["1/minute"], store=store)
    await store.charge("127.0.0.1", middleware._app_policies.limits, 1)
    sent: list[Any] = []

    async def receive() -> dict[str, Any]:
        return {"type": "websocket.disconnect", "code": 1001}

    async def send(message: Any) -> None:
        sent.append(message)

    await middleware(websocket_scope("/ws"), receive, send)
    assert sent == []
