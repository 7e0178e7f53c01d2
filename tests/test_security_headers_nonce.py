"""CSP nonces: one per response, fixed before the app runs, visible to the app and its
templates, matching the header even when read late or under concurrency (T46–T51, T60), and
client input that cannot change what the middleware sends."""

from __future__ import annotations

import base64
import pathlib
import re
import subprocess
import sys
from typing import Any

import anyio
import anyio.lowlevel
import httpx
import jinja2
import pytest
from hypothesis import given
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, StreamingResponse
from starlette.routing import Route

from middlewares import NONCE, SecurityHeadersMiddleware, get_csp_nonce
from middlewares._types import ASGIApp, Receive, Scope, Send
from middlewares.security_headers import (
    DEFAULT_CSP,
    HTML_PRESET,
    is_localhost,
    new_nonce,
    private_cache_control,
)
from middlewares.testing import Recorded, http_scope, run_asgi

pytestmark = pytest.mark.anyio

NONCED = {"default-src": "'self'", "script-src": ["'self'", NONCE]}
NONCE_IN_HEADER = re.compile(r"'nonce-([^']*)'")


def body_with_nonce(*headers: tuple[bytes, bytes], chunks: int = 1) -> ASGIApp:
    """An app that writes the nonce it sees in scope["state"] into its last body chunk."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        raw = [(b"content-type", b"text/html"), *headers]
        await send({"type": "http.response.start", "status": 200, "headers": raw})
        for _ in range(chunks - 1):
            await send({"type": "http.response.body", "body": b"...", "more_body": True})
            await anyio.lowlevel.checkpoint()
        nonce = scope["state"].get("csp_nonce") or "-"
        await send({"type": "http.response.body", "body": f"{nonce}|{get_csp_nonce()}".encode()})

    return app


async def respond(app: ASGIApp | None = None, **options: Any) -> Recorded:
    options.setdefault("content_security_policy", NONCED)
    middleware = SecurityHeadersMiddleware(app or body_with_nonce(), **options)
    return await run_asgi(middleware, http_scope())


def header_nonces(recorded: Recorded, name: str = "content-security-policy") -> list[str]:
    return NONCE_IN_HEADER.findall(recorded.header(name) or "")


async def test_T46_the_header_holds_exactly_the_nonce_the_app_sees() -> None:
    recorded = await respond()
    seen, from_context = recorded.body.decode().split("|")
    assert header_nonces(recorded) == [seen]
    assert from_context == seen


async def test_T46_no_nonce_when_the_policy_has_none() -> None:
    recorded = await respond(content_security_policy=DEFAULT_CSP)
    assert recorded.body == b"-|None"
    assert "nonce" not in (recorded.header("content-security-policy") or "")
    assert recorded.header("cache-control") is None


async def test_T46_the_nonce_is_outside_any_request_none() -> None:
    await respond()
    assert get_csp_nonce() is None


async def test_T49_nonce_has_at_least_128_bits_of_base64url() -> None:
    recorded = await respond()
    (nonce,) = header_nonces(recorded)
    assert re.fullmatch(r"[A-Za-z0-9_-]+", nonce)
    assert len(base64.urlsafe_b64decode(nonce)) >= 16


async def test_T49_nonce_only_in_the_directives_that_asked() -> None:
    policy = {**DEFAULT_CSP, "script-src": ["'self'", NONCE]}
    csp = (await respond(content_security_policy=policy)).header("content-security-policy")
    assert csp is not None
    directives = {d.split(" ")[0]: d for d in csp.split(";")}
    assert "'nonce-" in directives["script-src"]
    assert [name for name, d in directives.items() if "'nonce-" in d] == ["script-src"]


async def test_T47_a_nonce_read_in_the_third_streamed_chunk_still_matches() -> None:
    recorded = await respond(body_with_nonce(chunks=3))
    assert recorded.body_chunks[:2] == [b"...", b"..."]
    seen = recorded.body_chunks[2].decode().split("|")[0]
    assert header_nonces(recorded) == [seen]


async def test_T50_100_concurrent_streaming_requests_get_100_distinct_matching_nonces() -> None:
    middleware = SecurityHeadersMiddleware(
        body_with_nonce(chunks=3), content_security_policy=NONCED
    )
    results: list[Recorded] = []

    async def one() -> None:
        results.append(await run_asgi(middleware, http_scope()))

    async with anyio.create_task_group() as group:
        for _ in range(100):
            group.start_soon(one)
    pairs = [(header_nonces(r)[0], r.body_chunks[-1].decode().split("|")) for r in results]
    assert len({header for header, _ in pairs}) == 100
    for header, (state, context) in pairs:
        assert header == state == context


async def test_T51_enforce_and_report_only_together_with_independent_nonce_use() -> None:
    recorded = await respond(
        content_security_policy={"default-src": "'self'"},
        content_security_policy_report_only={"script-src": ["'self'", NONCE], "img-src": "*"},
    )
    assert recorded.header("content-security-policy") == "default-src 'self'"
    report_only = recorded.header("content-security-policy-report-only")
    assert report_only is not None
    assert report_only.startswith("script-src 'self' 'nonce-")
    assert report_only.endswith("';img-src *")
    seen = recorded.body.decode().split("|")[0]
    assert header_nonces(recorded, "content-security-policy-report-only") == [seen]


async def test_T51_one_nonce_shared_by_both_policies() -> None:
    recorded = await respond(
        content_security_policy={"script-src": NONCE},
        content_security_policy_report_only={"script-src": [NONCE, "'strict-dynamic'"]},
    )
    enforce = header_nonces(recorded)
    assert enforce == header_nonces(recorded, "content-security-policy-report-only")


@pytest.mark.parametrize(
    ("app_value", "expected"),
    [
        pytest.param(None, "private", id="no Cache-Control: private"),
        pytest.param(b"private, max-age=60", "private, max-age=60", id="already private: kept"),
        pytest.param(b"no-store", "no-store", id="no-store: kept"),
        pytest.param(b"NO-STORE", "NO-STORE", id="no-store in capitals: kept"),
        pytest.param(
            b"public, max-age=3600, s-maxage=600",
            "private, max-age=3600",
            id="public and s-maxage give way to private",
        ),
        pytest.param(b"max-age=60", "private, max-age=60", id="max-age kept, private added"),
    ],
)
async def test_T48_nonce_pages_are_never_stored_by_shared_caches(
    app_value: bytes | None, expected: str
) -> None:
    headers = () if app_value is None else ((b"Cache-Control", app_value),)
    recorded = await respond(body_with_nonce(*headers))
    assert recorded.header_all("cache-control") == [expected]


async def test_T48_the_cache_guard_can_be_turned_off() -> None:
    recorded = await respond(nonce_cache_control=False)
    assert recorded.header("cache-control") is None
    recorded = await respond(
        body_with_nonce((b"cache-control", b"public")), nonce_cache_control=False
    )
    assert recorded.header("cache-control") == "public"


async def test_T48_no_guard_when_the_apps_own_csp_is_kept() -> None:
    recorded = await respond(body_with_nonce((b"content-security-policy", b"default-src 'self'")))
    assert recorded.header("cache-control") is None
    assert recorded.header("content-security-policy") == "default-src 'self'"


async def test_T48_override_mode_guards_the_cache_too() -> None:
    app = body_with_nonce(
        (b"content-security-policy", b"default-src *"), (b"cache-control", b"public")
    )
    recorded = await respond(app, mode="override")
    assert header_nonces(recorded)
    assert recorded.header("cache-control") == "private"


def test_private_cache_control_decisions() -> None:
    assert private_cache_control(None) == b"private"
    assert private_cache_control(b"Private") is None
    assert private_cache_control(b" , no-cache ,") == b"private, no-cache"


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param([(b"content-type", b"application/json")], id="JSON"),
        pytest.param([(b"x-app", b"1")], id="no Content-Type"),
    ],
)
async def test_html_only_sends_no_nonce_policy_on_other_responses(
    headers: list[tuple[bytes, bytes]],
) -> None:
    async def not_a_page(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"{}"})

    recorded = await respond(not_a_page, html_only=True)
    assert recorded.header("content-security-policy") is None
    assert recorded.header("cache-control") is None
    assert recorded.header("x-content-type-options") == "nosniff"


# T60: templates and frameworks read the same nonce.


def starlette_app() -> Starlette:
    environment = jinja2.Environment(autoescape=True)
    environment.globals["csp_nonce"] = get_csp_nonce
    page = environment.from_string(
        '<script nonce="{{ csp_nonce() }}">1</script><p>{{ request.state.csp_nonce }}</p>'
    )

    async def home(request: Request) -> HTMLResponse:
        return HTMLResponse(page.render(request=request))

    async def stream(request: Request) -> StreamingResponse:
        async def chunks() -> Any:
            yield "first,"
            await anyio.lowlevel.checkpoint()
            yield "second,"
            await anyio.lowlevel.checkpoint()
            yield request.state.csp_nonce

        return StreamingResponse(chunks(), media_type="text/html")

    return Starlette(routes=[Route("/", home), Route("/stream", stream)])


async def test_T60_jinja2_global_and_request_state_render_the_headers_nonce() -> None:
    app = SecurityHeadersMiddleware(starlette_app(), **HTML_PRESET)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        response = await client.get("/")
    (nonce,) = NONCE_IN_HEADER.findall(response.headers["content-security-policy"])
    assert response.text == f'<script nonce="{nonce}">1</script><p>{nonce}</p>'
    assert response.headers["cache-control"] == "private"


@pytest.mark.server
def test_T47_starlette_streaming_response_over_a_real_server(live_server: Any) -> None:
    app = SecurityHeadersMiddleware(starlette_app(), **HTML_PRESET)
    with live_server(app) as url, httpx.Client() as client:
        bodies = set()
        for _ in range(3):
            response = client.get(f"{url}/stream")
            (nonce,) = NONCE_IN_HEADER.findall(response.headers["content-security-policy"])
            assert response.text == f"first,second,{nonce}"
            bodies.add(response.text)
    assert len(bodies) == 3


# Client input cannot change the headers.

printable = st.text(st.characters(min_codepoint=0, max_codepoint=0x2FF), max_size=40)


@given(
    path=printable,
    headers=st.lists(st.tuples(st.binary(max_size=30), st.binary(max_size=60)), max_size=8),
)
async def test_hostile_paths_and_headers_never_change_the_headers(
    path: str, headers: list[tuple[bytes, bytes]]
) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    middleware = SecurityHeadersMiddleware(app, overrides={"/docs": {"frame_options": "DENY"}})
    baseline = await run_asgi(middleware, http_scope())
    scope = http_scope()
    scope["path"] = "/" + path
    scope["headers"] = [(k.lower(), v) for k, v in headers]
    hostile = await run_asgi(middleware, scope, validate=False)
    expected = baseline.headers
    if scope["path"] == "/docs":
        expected = [
            (b"x-frame-options", b"DENY") if k == b"x-frame-options" else (k, v)
            for k, v in expected
        ]
    assert hostile.headers == expected
    # Over https, only a Host naming localhost can hold HSTS back, and nothing raises.
    scope["scheme"] = "https"
    secure = await run_asgi(middleware, scope, validate=False)
    assert secure.status == 200


def test_T50_nonces_stay_distinct_across_pool_refills() -> None:
    nonces = [new_nonce() for _ in range(1000)]
    assert len({text for _, text in nonces}) == 1000
    for raw, text in nonces:
        assert raw.decode() == text
        assert len(base64.urlsafe_b64decode(raw)) == 18


FORK_SCRIPT = """
import os
from middlewares.security_headers import new_nonce

new_nonce()  # the pool now holds nonces a forked worker must not inherit
read, write = os.pipe()
pid = os.fork()
if pid == 0:
    os.write(write, new_nonce()[0])
    os._exit(0)
os.close(write)
child = os.read(read, 64)
os.waitpid(pid, 0)
parent = [new_nonce()[0] for _ in range(300)]
print("reused" if child in parent else "fresh")
"""


def test_T50_a_forked_worker_never_reuses_the_parents_nonces() -> None:
    # A fresh interpreter: forking this multi-threaded test process would be unsafe.
    root = pathlib.Path(__file__).parent.parent
    result = subprocess.run(
        [sys.executable, "-c", FORK_SCRIPT], cwd=root, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "fresh"


async def test_T48_guard_when_the_app_set_other_security_headers() -> None:
    recorded = await respond(body_with_nonce((b"x-frame-options", b"DENY")))
    assert header_nonces(recorded)
    assert recorded.header("cache-control") == "private"
    assert recorded.header("x-frame-options") == "DENY"


@given(st.binary(max_size=80))
def test_cache_control_of_any_bytes_ends_private_or_already_was(value: bytes) -> None:
    result = private_cache_control(value)
    if result is None:
        assert b"private" in value.lower() or b"no-store" in value.lower()
    else:
        assert result.startswith(b"private")
        assert b"public" not in [m.strip().lower() for m in result.split(b",")]


@given(st.binary(max_size=80), st.sampled_from([b"", b":8443", b"."]))
def test_any_host_bytes_decide_localhost_without_raising(host: bytes, suffix: bytes) -> None:
    scope = http_scope(scheme="https")
    scope["headers"] = [(b"host", host + suffix)]
    if is_localhost(scope):
        assert b"localhost" in host.lower()
    scope["headers"] = [(b"host", host.replace(b":", b"") + b".localhost" + suffix)]
    assert is_localhost(scope) is not host.startswith(b"[")
