"""CORSMiddleware over HTTP: the same answers as Starlette's for every safe configuration (run
side by side), and each trap of the CORS reference that Starlette or its peers fall into."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from starlette.middleware.cors import CORSMiddleware as StarletteCORS

from middlewares._types import ASGIApp, Receive, Scope, Send
from middlewares.cors import ALL_METHODS, CORSMiddleware
from middlewares.testing import Recorded, http_scope, run_asgi

pytestmark = pytest.mark.anyio

SITE = "https://app.example.com"
EVIL = "https://evil.example.net"


async def ok_app(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


def app_with_headers(*headers: tuple[bytes, bytes]) -> ASGIApp:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": list(headers)})
        await send({"type": "http.response.body", "body": b"ok"})

    return app


def preflight(origin: str = SITE, method: str = "GET", **extra: str) -> Scope:
    headers = {"origin": origin, "access-control-request-method": method}
    headers.update({k.replace("_", "-"): v for k, v in extra.items()})
    return http_scope("OPTIONS", "/anything", headers=headers)


def simple(origin: str | None = SITE, method: str = "GET") -> Scope:
    return http_scope(method, "/", headers={} if origin is None else {"origin": origin})


def summary(recorded: Recorded) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
    return recorded.status, recorded.body, sorted(recorded.headers)


SAFE_CONFIGS = {
    "defaults": {},
    "listed origins": {"allow_origins": [SITE]},
    "listed origins, methods, headers": {
        "allow_origins": [SITE, "https://other.example.com"],
        "allow_methods": ["GET", "PUT", "DELETE"],
        "allow_headers": ["X-Request-Id", "authorization"],
        "max_age": 3600,
    },
    "all methods": {"allow_origins": [SITE], "allow_methods": ["*"]},
    "all headers mirrored": {"allow_origins": [SITE], "allow_headers": ["*"]},
    "any origin": {"allow_origins": ["*"], "allow_methods": ["*"]},
    "any origin, any header": {"allow_origins": ["*"], "allow_headers": ["*"]},
    "regex": {"allow_origin_regex": r"https://.*\.example\.com"},
    "credentials": {"allow_origins": [SITE], "allow_credentials": True},
    "expose headers": {"allow_origins": [SITE], "expose_headers": ["X-Total", "X-Page"]},
    "private network": {"allow_origins": [SITE], "allow_private_network": True},
}

SAFE_REQUESTS = {
    "simple, allowed origin": simple(SITE),
    "simple, other origin": simple(EVIL),
    "simple, no origin": simple(None),
    "POST, allowed origin": simple(SITE, "POST"),
    "preflight, allowed": preflight(),
    "preflight, other origin": preflight(EVIL),
    "preflight, method not allowed": preflight(method="PATCH"),
    "preflight, method PUT": preflight(method="PUT"),
    "preflight, safelisted header": preflight(access_control_request_headers="Content-Type"),
    "preflight, listed header": preflight(access_control_request_headers="x-request-id"),
    "preflight, two headers": preflight(access_control_request_headers="X-Request-Id, Accept"),
    "preflight, unlisted header": preflight(access_control_request_headers="x-secret"),
    "preflight, private network": preflight(access_control_request_private_network="true"),
    "OPTIONS without request method reaches the app": http_scope(
        "OPTIONS", headers={"origin": SITE}
    ),
    "OPTIONS without origin reaches the app": http_scope(
        "OPTIONS", headers={"access-control-request-method": "GET"}
    ),
}

CREDENTIALED_REJECTIONS = {
    ("credentials", "simple, other origin"),
    ("credentials", "preflight, other origin"),
    ("expose headers", "simple, other origin"),
}


@pytest.mark.parametrize("request_name", list(SAFE_REQUESTS))
@pytest.mark.parametrize("config_name", list(SAFE_CONFIGS))
async def test_same_answer_as_starlette(config_name: str, request_name: str) -> None:
    config: dict[str, Any] = SAFE_CONFIGS[config_name]
    scope = SAFE_REQUESTS[request_name]
    ours = await run_asgi(CORSMiddleware(ok_app, **config), dict(scope))
    theirs = await run_asgi(StarletteCORS(ok_app, **config), dict(scope))
    if (config_name, request_name) in CREDENTIALED_REJECTIONS:
        # Deliberate difference: Starlette sends ACAC / Expose-Headers to refused origins too.
        dropped = {b"access-control-allow-credentials", b"access-control-expose-headers"}
        theirs_headers = [(k, v) for k, v in theirs.headers if k not in dropped]
        assert sorted(ours.headers) == sorted(theirs_headers)
        assert (ours.status, ours.body) == (theirs.status, theirs.body)
    else:
        assert summary(ours) == summary(theirs)


async def test_allowed_preflight_is_200_ok_with_the_grants() -> None:
    middleware = CORSMiddleware(
        ok_app,
        allow_origins=[SITE],
        allow_methods=["GET", "PUT"],
        allow_headers=["x-request-id"],
        allow_credentials=True,
        max_age=120,
    )
    recorded = await run_asgi(middleware, preflight(method="PUT"))
    assert (recorded.status, recorded.body) == (200, b"OK")
    assert recorded.header("content-type") == "text/plain; charset=utf-8"
    assert recorded.header("access-control-allow-origin") == SITE
    assert recorded.header("access-control-allow-credentials") == "true"
    assert recorded.header("access-control-allow-methods") == "GET, PUT"
    assert recorded.header("access-control-max-age") == "120"
    assert recorded.header("access-control-allow-headers") == (
        "Accept, Accept-Language, Content-Language, Content-Type, x-request-id"
    )


async def test_all_methods_sends_the_fixed_list() -> None:
    recorded = await run_asgi(
        CORSMiddleware(ok_app, allow_origins=[SITE], allow_methods=["*"]), preflight()
    )
    assert recorded.header("access-control-allow-methods") == ", ".join(ALL_METHODS)


async def test_refused_preflight_names_everything_refused() -> None:
    recorded = await run_asgi(
        CORSMiddleware(ok_app, allow_origins=[SITE]),
        preflight(
            EVIL,
            "DELETE",
            access_control_request_headers="x-secret",
            access_control_request_private_network="true",
        ),
    )
    assert recorded.status == 400
    assert recorded.body == b"Disallowed CORS origin, method, headers, private-network"
    assert recorded.header("access-control-allow-origin") is None


async def test_preflight_is_answered_before_an_app_that_demands_auth() -> None:
    async def auth_wall(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 401, "headers": []})
        await send({"type": "http.response.body", "body": b"login first"})

    middleware = CORSMiddleware(auth_wall, allow_origins=[SITE], allow_methods=["POST"])
    recorded = await run_asgi(middleware, preflight(method="POST"))
    assert (recorded.status, recorded.body) == (200, b"OK")


# ---- Trap 1: errors must reach the browser as a 500, not a CORS failure -------------------


async def test_app_raising_before_responding_gets_a_500_with_cors_headers_then_re_raises() -> None:
    async def broken(scope: Scope, receive: Receive, send: Send) -> None:
        raise LookupError("database down")

    sent: list[dict[str, Any]] = []

    async def record(message: Any) -> None:
        sent.append(message)

    async def receive() -> Any:
        return {"type": "http.request", "body": b""}

    middleware = CORSMiddleware(broken, allow_origins=[SITE], allow_credentials=True)
    with pytest.raises(LookupError, match="database down"):
        await middleware(simple(SITE), receive, record)
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.body"]
    assert sent[0]["status"] == 500
    headers = dict(sent[0]["headers"])
    assert headers[b"access-control-allow-origin"] == SITE.encode()
    assert headers[b"access-control-allow-credentials"] == b"true"
    assert headers[b"vary"] == b"Origin"
    assert sent[1]["body"] == b"Internal Server Error"


async def test_app_raising_after_starting_is_re_raised_without_a_second_response() -> None:
    async def breaks_midway(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        raise LookupError("stream broke")

    sent: list[dict[str, Any]] = []

    async def record(message: Any) -> None:
        sent.append(message)

    async def receive() -> Any:
        return {"type": "http.request", "body": b""}

    with pytest.raises(LookupError):
        await CORSMiddleware(breaks_midway, allow_origins=[SITE])(simple(SITE), receive, record)
    assert [(m["type"], m.get("status")) for m in sent] == [("http.response.start", 200)]


async def test_a_client_gone_while_sending_the_500_still_re_raises_the_app_error() -> None:
    async def broken(scope: Scope, receive: Receive, send: Send) -> None:
        raise LookupError("database down")

    async def gone(message: Any) -> None:
        raise OSError("connection reset")

    async def receive() -> Any:
        return {"type": "http.request", "body": b""}

    with pytest.raises(LookupError):
        await CORSMiddleware(broken, allow_origins=[SITE])(simple(SITE), receive, gone)


# ---- Traps 2 and 3: credentials with "*" -----------------------------------------------------


async def test_any_origin_with_credentials_warns_reflects_and_never_reflects_null() -> None:
    with pytest.warns(UserWarning, match="every website"):
        middleware = CORSMiddleware(ok_app, allow_origins=["*"], allow_credentials=True)
    recorded = await run_asgi(middleware, simple(EVIL))
    assert recorded.header("access-control-allow-origin") == EVIL
    assert recorded.header("access-control-allow-credentials") == "true"
    null = await run_asgi(middleware, simple("null"))
    assert null.header("access-control-allow-origin") is None
    assert null.header("access-control-allow-credentials") is None
    null_preflight = await run_asgi(middleware, preflight("null"))
    assert null_preflight.status == 400
    assert null_preflight.header("access-control-allow-origin") is None


async def test_any_origin_with_credentials_preflight_reflects_whatever_the_cookies() -> None:
    with pytest.warns(UserWarning, match="every website"):
        middleware = CORSMiddleware(ok_app, allow_origins=["*"], allow_credentials=True)
    for extra in ({}, {"cookie": "session=1"}):
        recorded = await run_asgi(
            middleware,
            http_scope(
                "OPTIONS",
                headers={"origin": EVIL, "access-control-request-method": "GET", **extra},
            ),
        )
        assert recorded.header("access-control-allow-origin") == EVIL
        assert recorded.header("access-control-allow-credentials") == "true"


async def test_null_is_allowed_when_listed_explicitly() -> None:
    with pytest.warns(UserWarning, match="every website"):
        middleware = CORSMiddleware(ok_app, allow_origins=["*", "null"], allow_credentials=True)
    recorded = await run_asgi(middleware, simple("null"))
    assert recorded.header("access-control-allow-origin") == "null"


async def test_any_origin_without_credentials_sends_a_literal_star() -> None:
    recorded = await run_asgi(CORSMiddleware(ok_app, allow_origins=["*"]), simple("null"))
    assert recorded.header("access-control-allow-origin") == "*"
    assert recorded.header("access-control-allow-credentials") is None


async def test_credentials_and_exposed_headers_go_only_to_allowed_origins() -> None:
    middleware = CORSMiddleware(
        ok_app, allow_origins=[SITE], allow_credentials=True, expose_headers=["x-total"]
    )
    allowed = await run_asgi(middleware, simple(SITE))
    assert allowed.header("access-control-allow-credentials") == "true"
    assert allowed.header("access-control-expose-headers") == "x-total"
    refused = await run_asgi(middleware, simple(EVIL))
    assert refused.header("access-control-allow-origin") is None
    assert refused.header("access-control-allow-credentials") is None
    assert refused.header("access-control-expose-headers") is None


# ---- Traps 6, 7 and 8: Vary ------------------------------------------------------------------


@pytest.mark.parametrize(
    "origin", [pytest.param(SITE, id="allowed"), pytest.param(EVIL, id="refused"), None]
)
async def test_vary_origin_on_every_simple_response(origin: str | None) -> None:
    recorded = await run_asgi(CORSMiddleware(ok_app, allow_origins=[SITE]), simple(origin))
    assert recorded.header_all("vary") == ["Origin"]


@pytest.mark.parametrize(
    ("app_vary", "merged"),
    [
        pytest.param([b"Accept-Encoding"], "Accept-Encoding, Origin", id="kept"),
        pytest.param([b"accept-encoding", b"origin"], "accept-encoding, origin", id="no dup"),
        pytest.param([b"*"], "*", id="star absorbs"),
    ],
)
async def test_vary_is_merged_never_overwritten(app_vary: list[bytes], merged: str) -> None:
    app = app_with_headers(*[(b"vary", v) for v in app_vary])
    for origin in (SITE, None):
        recorded = await run_asgi(CORSMiddleware(app, allow_origins=[SITE]), simple(origin))
        assert recorded.header_all("vary") == [merged]


async def test_app_headers_list_is_not_edited_in_place() -> None:
    shared = [(b"content-type", b"text/plain")]
    app = app_with_headers(*shared)
    await run_asgi(CORSMiddleware(app, allow_origins=[SITE]), simple(SITE))
    assert shared == [(b"content-type", b"text/plain")]


async def test_app_own_allow_origin_is_replaced_not_duplicated() -> None:
    app = app_with_headers((b"Access-Control-Allow-Origin", b"*"))
    recorded = await run_asgi(CORSMiddleware(app, allow_origins=[SITE]), simple(SITE))
    assert recorded.header_all("access-control-allow-origin") == [SITE]


@pytest.mark.parametrize("origin", [SITE, EVIL])
async def test_preflight_varies_on_request_method_headers_and_private_network(origin: str) -> None:
    recorded = await run_asgi(CORSMiddleware(ok_app, allow_origins=[SITE]), preflight(origin))
    assert recorded.header("vary") == (
        "Origin, Access-Control-Request-Method, Access-Control-Request-Headers, "
        "Access-Control-Request-Private-Network"
    )


# ---- Trap 9: tolerant header lists, case-insensitive configuration ---------------------------


@pytest.mark.parametrize(
    "requested",
    [
        pytest.param("", id="empty"),
        pytest.param("x-foo,", id="trailing comma"),
        pytest.param(" X-Foo , , content-type ", id="spaces, case and empty members"),
        pytest.param("x-foo,\tACCEPT", id="tab"),
    ],
)
async def test_request_header_lists_are_parsed_tolerantly(requested: str) -> None:
    middleware = CORSMiddleware(ok_app, allow_origins=[SITE], allow_headers=["X-FOO"])
    recorded = await run_asgi(middleware, preflight(access_control_request_headers=requested))
    assert (recorded.status, recorded.body) == (200, b"OK")


async def test_first_origin_and_request_method_fields_count() -> None:
    middleware = CORSMiddleware(ok_app, allow_origins=[SITE], allow_methods=["GET"])
    scope = http_scope(
        "OPTIONS",
        headers=[
            ("origin", SITE),
            ("origin", EVIL),
            ("access-control-request-method", "GET"),
            ("access-control-request-method", "DELETE"),
        ],
    )
    recorded = await run_asgi(middleware, scope)
    assert (recorded.status, recorded.header("access-control-allow-origin")) == (200, SITE)


async def test_request_headers_split_over_several_fields_are_all_checked() -> None:
    middleware = CORSMiddleware(ok_app, allow_origins=[SITE], allow_headers=["x-foo"])
    scope = http_scope(
        "OPTIONS",
        headers=[
            ("origin", SITE),
            ("access-control-request-method", "GET"),
            ("access-control-request-headers", "x-foo"),
            ("access-control-request-headers", "x-bar"),
        ],
    )
    assert (await run_asgi(middleware, scope)).status == 400


async def test_method_configuration_is_case_insensitive() -> None:
    middleware = CORSMiddleware(ok_app, allow_origins=[SITE], allow_methods=["get", "put"])
    recorded = await run_asgi(middleware, preflight(method="PUT"))
    assert recorded.status == 200
    assert recorded.header("access-control-allow-methods") == "GET, PUT"


async def test_a_response_header_sent_as_a_request_header_is_refused_and_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    middleware = CORSMiddleware(ok_app, allow_origins=[SITE], allow_headers=["x-foo"])
    with caplog.at_level(logging.DEBUG, logger="middlewares.cors"):
        recorded = await run_asgi(
            middleware,
            preflight(access_control_request_headers="x-foo, Access-Control-Allow-Origin"),
        )
    assert (recorded.status, recorded.body) == (400, b"Disallowed CORS headers")
    assert "refused headers ['Access-Control-Allow-Origin']" in caplog.text


async def test_mirrored_headers_under_star_cover_every_field() -> None:
    middleware = CORSMiddleware(ok_app, allow_origins=[SITE], allow_headers=["*"])
    scope = http_scope(
        "OPTIONS",
        headers=[
            ("origin", SITE),
            ("access-control-request-method", "GET"),
            ("access-control-request-headers", "authorization"),
            ("access-control-request-headers", "x-anything"),
        ],
    )
    recorded = await run_asgi(middleware, scope)
    assert recorded.header("access-control-allow-headers") == "authorization, x-anything"


async def test_rejections_are_logged_with_client_values_escaped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    middleware = CORSMiddleware(ok_app, allow_origins=[SITE])
    with caplog.at_level(logging.DEBUG, logger="middlewares.cors"):
        await run_asgi(middleware, simple("https://x\n.test FAKE LOG LINE"))
        await run_asgi(middleware, preflight("https://y\r\n.test"))
    assert "\n.test" not in caplog.text
    assert "'https://x\\n.test FAKE LOG LINE'" in caplog.text
    assert "'https://y\\r\\n.test'" in caplog.text


# ---- Trap 11: private network access is opt-in -----------------------------------------------


async def test_private_network_preflight_needs_the_option() -> None:
    scope = preflight(access_control_request_private_network="true")
    refused = await run_asgi(CORSMiddleware(ok_app, allow_origins=[SITE]), dict(scope))
    assert (refused.status, refused.header("access-control-allow-private-network")) == (400, None)
    allowed = await run_asgi(
        CORSMiddleware(ok_app, allow_origins=[SITE], allow_private_network=True), dict(scope)
    )
    assert (allowed.status, allowed.header("access-control-allow-private-network")) == (
        200,
        "true",
    )


# ---- Trap 12: excluded paths match the raw path, case-sensitively ----------------------------


async def test_excluded_paths_pass_through_untouched_and_case_sensitively() -> None:
    middleware = CORSMiddleware(ok_app, allow_origins=[SITE], exclude_paths=["/public/*"])
    excluded = await run_asgi(
        middleware, http_scope("OPTIONS", "/public/x", headers=preflight()["headers"])
    )
    assert (excluded.status, excluded.body, excluded.headers) == (200, b"ok", [])
    handled = await run_asgi(
        middleware, http_scope("OPTIONS", "/Public/x", headers=preflight()["headers"])
    )
    assert handled.body == b"OK"


async def test_unknown_scope_types_pass_through() -> None:
    seen: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope["type"])

    await CORSMiddleware(app, allow_origins=[SITE])({"type": "lifespan"}, None, None)  # type: ignore[arg-type]
    assert seen == ["lifespan"]


async def test_messages_after_the_start_pass_through_untouched() -> None:
    sent = [
        {"type": "http.response.start", "status": 200, "headers": [], "trailers": True},
        {"type": "http.response.body", "body": b"a", "more_body": True},
        {"type": "http.response.body", "body": b"b"},
        {"type": "http.response.trailers", "headers": [(b"x-checksum", b"1")]},
    ]

    async def streaming(scope: Scope, receive: Receive, send: Send) -> None:
        for message in sent:
            await send(dict(message))

    scope = http_scope(headers={"origin": SITE}, extensions={"http.response.trailers": {}})
    recorded = await run_asgi(CORSMiddleware(streaming, allow_origins=[SITE]), scope)
    assert recorded.messages[1:] == sent[1:]
    assert recorded.header("access-control-allow-origin") == SITE


async def test_the_example_serves_its_front_ends() -> None:
    from examples.cors import app

    tenant = await run_asgi(
        app,
        preflight(
            "https://shop.customer.test", "PUT", access_control_request_headers="x-request-id"
        ),
    )
    assert (tenant.status, tenant.header("access-control-allow-origin")) == (
        200,
        "https://shop.customer.test",
    )
    dev = await run_asgi(
        app, http_scope("GET", "/items", headers={"origin": "http://localhost:5173"})
    )
    assert dev.header("access-control-allow-origin") == "http://localhost:5173"
    assert dev.header("access-control-allow-credentials") == "true"
    home = await run_asgi(app, http_scope("GET", "/"))
    assert (home.status, home.header("vary")) == (200, "Origin")
