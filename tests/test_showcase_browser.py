"""The showcase: its stack and secret, then each middleware seen working from the page in
headless Chromium."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack
from typing import Any

import httpx
import pytest

from examples.showcase import api_app, page_app

LiveServer = Callable[..., AbstractContextManager[str]]
ROOT = pathlib.Path(__file__).resolve().parent.parent

# docs/ordering.md's canonical stack, outermost first: the showcase's layers keep this order.
CANONICAL_ORDER = [
    "ProxyHeadersMiddleware",
    "AccessLogMiddleware",
    "OpenTelemetryMiddleware",
    "RequestIDMiddleware",
    "TimingMiddleware",
    "SecurityHeadersMiddleware",
    "TrustedHostMiddleware",
    "HTTPSRedirectMiddleware",
    "CORSMiddleware",
    "RateLimitMiddleware",
    "TimeoutMiddleware",
    "CompressionMiddleware",
    "RequestDecompressionMiddleware",
    "BodyLimitMiddleware",
    "SessionMiddleware",
    "CSRFMiddleware",
    "BlockingDetector",
    "OffloadMiddleware",
]


@pytest.fixture
def showcase(live_server: LiveServer, page: Any) -> Iterator[Any]:
    """The page served on one port, its API on another, the page open in Chromium."""
    with ExitStack() as stack:
        # Each side needs the other's address: serve both, then tell the page where the API is.
        page_application = page_app()
        # Served as examples.showcase.serve() serves them: uvicorn's access log and proxy
        # headers off, so that the page's own middleware is what the panels show.
        options = {"access_log": False, "proxy_headers": False}
        page_url = stack.enter_context(live_server(page_application, **options))
        api_url = stack.enter_context(live_server(api_app([page_url]), **options))
        page_application.state.api_url = api_url
        page.goto(page_url)
        wait_text(page, "counter", "text !== '-'")
        yield page


def wait_text(page: Any, element_id: str, condition: str) -> str:
    """Wait until the JavaScript ``condition`` on ``text``, the element's text, holds.

    Functions, not strings: the page's Content-Security-Policy forbids eval, which Playwright
    would use to run a bare expression.
    """
    page.wait_for_function(
        f"() => {{ const text = document.getElementById('{element_id}').textContent;"
        f" return {condition}; }}"
    )
    text: str = page.text_content(f"#{element_id}")
    return text


def click_and_read(page: Any, button: str, output: str) -> str:
    page.click(button)
    text = wait_text(page, output, "!['-', 'running...'].includes(text)")
    page.evaluate(f"() => {{ document.getElementById('{output}').textContent = '-'; }}")
    return text


def table_rows(page: Any, selector: str) -> list[list[str]]:
    rows: list[list[str]] = page.eval_on_selector_all(
        selector, "rows => rows.map(r => Array.from(r.cells, c => c.textContent))"
    )
    return rows


def test_the_stack_follows_the_canonical_order() -> None:
    names = [layer.cls.__name__ for layer in page_app().user_middleware]
    assert names == [name for name in CANONICAL_ORDER if name in names]


def showcase_secret(**environment: str) -> str:
    env = {key: value for key, value in os.environ.items() if key != "SESSION_SECRET"}
    probe = "import examples.showcase as s; print(s.SECRET)"
    result = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=ROOT,
        env={**env, **environment},
        check=True,
        capture_output=True,
        text=True,
    )
    return result.stdout.strip()


def test_the_session_secret_comes_from_the_environment_or_is_drawn_per_process() -> None:
    assert showcase_secret(SESSION_SECRET="set-by-the-operator") == "set-by-the-operator"
    drawn = {showcase_secret(), showcase_secret()}
    assert len(drawn) == 2  # no fixed fallback anyone could read in the repository
    assert all(len(secret) >= 43 for secret in drawn)  # 32 random bytes


async def get_from_page_app(url: str, **headers: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=page_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000") as client:
        return await client.get(url, headers=headers)


@pytest.mark.anyio
@pytest.mark.parametrize(
    "host",
    [
        pytest.param('x"</script><script>alert(1)</script>', id="markup in the Host header"),
        pytest.param("[::1", id="an unclosed IPv6 literal"),
        pytest.param("127.0.0.1:notaport", id="a port that is not a number"),
    ],
)
async def test_a_hostile_host_header_never_reaches_the_page_as_markup(host: str) -> None:
    response = await get_from_page_app("/", host=host)
    assert response.status_code == 200
    assert "alert(1)" not in response.text
    assert response.text.count("<script") == 2  # the page's own script and the injected one


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("query", "status"),
    [
        pytest.param("seconds=abc", 504, id="not a number: the default 3 s, cut at 1 s"),
        pytest.param("seconds=nan", 504, id="nan: the default 3 s, cut at 1 s"),
        pytest.param("seconds=-5", 200, id="a negative delay is no delay"),
        pytest.param("seconds=1e999", 504, id="an infinite delay is the default"),
    ],
)
async def test_malformed_query_numbers_never_make_a_500(query: str, status: int) -> None:
    assert (await get_from_page_app(f"/guards/slow?{query}")).status_code == status


def test_cross_origin_calls(showcase: Any) -> None:
    assert click_and_read(showcase, "#cors-simple", "cors-out").startswith("simple: 200")
    preflighted = click_and_read(showcase, "#cors-preflight", "cors-out")
    assert preflighted.startswith("preflighted: 200")
    assert '"method":"PUT"' in preflighted
    assert '"x_demo":"42"' in preflighted
    first = click_and_read(showcase, "#cors-credentials", "cors-out")
    assert first.startswith("credentialed: 200")
    assert '"cookie_sent":false' in first
    # The credentialed response's Set-Cookie was stored, and goes back with the next call.
    assert '"cookie_sent":true' in click_and_read(showcase, "#cors-credentials", "cors-out")
    assert "refused by the browser" in click_and_read(showcase, "#cors-refused", "cors-out")


def test_compressed_catalogue_and_server_timing(showcase: Any) -> None:
    showcase.click("#compress")
    wait_text(showcase, "sizes", "text !== '-'")
    assert showcase.text_content("#encoding") in {"zstd", "br", "gzip"}
    transfer = int(showcase.text_content("#transfer"))
    decoded = int(showcase.text_content("#decoded").split()[0])
    assert transfer * 4 < decoded  # compressed well, and Chromium decoded it
    metrics = [row[0] for row in table_rows(showcase, "#timing-table tr.metric")]
    assert metrics == ["app", "db", "render"]


def test_event_stream_arrives_event_by_event(showcase: Any) -> None:
    showcase.click("#events")
    first_seen = wait_text(showcase, "events-out", "text.includes('1 of 5')")
    assert "5 of 5" not in first_seen  # the first event was shown before the stream ended
    wait_text(showcase, "events-out", "text.includes('5 of 5')")


def test_session_counter_and_cookie(showcase: Any) -> None:
    showcase.click("#count")
    wait_text(showcase, "counter", "text === '1'")
    showcase.click("#count")
    wait_text(showcase, "counter", "text === '2'")
    showcase.reload()
    wait_text(showcase, "counter", "text === '2'")
    assert showcase.text_content("#cookies") == '""'  # HttpOnly: invisible to scripts
    cookie = next(c for c in showcase.context.cookies() if c["name"] == "session")
    assert cookie["httpOnly"] is True
    assert cookie["sameSite"] == "Lax"
    showcase.click("#reset")
    wait_text(showcase, "counter", "text === '0'")


def test_offloaded_cpu_task_leaves_the_server_responsive(showcase: Any) -> None:
    showcase.evaluate(
        "() => { window.pings = 0;"
        " setInterval(async () => { await fetch('/ping'); window.pings++; }, 20); }"
    )
    showcase.click("#cpu")
    assert '"primes"' in wait_text(showcase, "cpu-out", "text.startsWith('{')")
    # Pings kept being answered while the task ran: the event loop was never held.
    assert showcase.evaluate("() => window.pings") > 0


def edge_columns(page: Any, button: str) -> dict[str, dict[str, str]]:
    page.evaluate("() => document.querySelectorAll('.cols pre').forEach(p => p.textContent = '-')")
    page.click(button)
    wait_text(page, "edge-untrusted", "text !== '-'")
    return {
        mount: json.loads(page.text_content(f"#edge-{mount}"))
        for mount in ("direct", "trusted", "untrusted")
    }


def test_proxy_panel_shows_the_client_only_a_trusted_proxy_reports(showcase: Any) -> None:
    seen = edge_columns(showcase, "#edge-forward")
    for untouched in ("direct", "untrusted"):
        assert seen[untouched]["client"] == "127.0.0.1"
        assert seen[untouched]["scheme"] == "http"
        assert seen[untouched]["url"].startswith("http://127.0.0.1:")
    assert seen["trusted"]["client"] == "203.0.113.7"
    assert seen["trusted"]["scheme"] == "https"
    assert seen["trusted"]["host"] == "shop.example.com"
    assert seen["trusted"]["url"] == "https://shop.example.com/shop/edge/trusted/whoami"


def test_proxy_panel_never_believes_a_spoofed_leftmost_address(showcase: Any) -> None:
    seen = edge_columns(showcase, "#edge-spoof")
    # The trusted proxy appended the address it saw; what the client wrote before it is ignored.
    assert seen["trusted"]["client"] == "203.0.113.7"
    assert "6.6.6.6" not in json.dumps(seen)


def test_security_headers_panel(showcase: Any) -> None:
    showcase.wait_for_function("() => document.querySelectorAll('#security-table tr').length > 5")
    # The inline script without the nonce did not run; the page's own script did.
    assert showcase.text_content("#injected") == "blocked by the policy"
    assert len(showcase.text_content("#nonce")) == 24
    headers = dict(table_rows(showcase, "#security-table tr.header"))
    assert "'nonce-" in headers["content-security-policy"]
    assert "'unsafe-inline'" not in headers["content-security-policy"].split("script-src")[1]
    assert headers["x-frame-options"] == "SAMEORIGIN"
    assert headers["cache-control"] == "private"  # a page holding a nonce is never shared
    assert "strict-transport-security" not in headers  # plain http: HSTS would be ignored


def test_the_nonce_changes_with_every_page_load(showcase: Any) -> None:
    first = wait_text(showcase, "nonce", "text !== '-'")
    showcase.reload()
    assert wait_text(showcase, "nonce", "text !== '-'") != first


def test_rate_limit_button_fires_until_refused(showcase: Any) -> None:
    showcase.click("#burst")
    showcase.wait_for_function("() => document.querySelectorAll('#rl-table tr.hit').length === 8")
    rows = table_rows(showcase, "#rl-table tr.hit")
    assert [row[1] for row in rows] == ["200"] * 5 + ["429"] * 3
    assert rows[0][2] == '"demo";r=4;t=6'
    assert all(int(row[3]) >= 1 for row in rows[5:])  # refusals say when to come back
    assert showcase.text_content("#rl-policy") == '"demo";q=5;w=30'


def access_lines(page: Any, condition: str) -> list[list[str]]:
    """Wait for an access-log row whose cells (path, query, status, outcome) match ``condition``."""
    page.wait_for_function(
        "() => Array.from(document.querySelectorAll('#access-table tr.line'), r => r.cells)"
        f".some(([, , path, query, status, outcome]) => {condition})"
    )
    return table_rows(page, "#access-table tr.line")


def test_access_log_panel_shows_the_page_requests_live(showcase: Any) -> None:
    showcase.click("#count")
    rows = access_lines(showcase, "path.textContent === '/counter' && status.textContent === '200'")
    assert not any(row[2] in {"/ping", "/access-log"} for row in rows)  # excluded paths
    home = next(row for row in rows if row[2] == "/")
    assert home[5] == "ok"
    assert len(home[9]) == 8  # the request id, shortened for the table


def test_access_log_redacts_a_token_in_the_query(showcase: Any) -> None:
    showcase.click("#token-query")
    rows = access_lines(showcase, "path.textContent === '/catalogue.json'")
    queries = [row[3] for row in rows if row[2] == "/catalogue.json"]
    assert queries == ["access_token=REDACTED"]


def test_access_log_records_a_client_leaving_mid_stream_as_499(showcase: Any) -> None:
    showcase.click("#leave")
    rows = access_lines(showcase, "path.textContent === '/events'")
    events = next(row for row in rows if row[2] == "/events")
    assert events[4:6] == ["499", "disconnect"]


def test_csrf_panel_passes_this_page_and_refuses_another_site(showcase: Any) -> None:
    assert click_and_read(showcase, "#csrf-same", "csrf-out") == "this page: 200 transferred 10"
    refused = click_and_read(showcase, "#csrf-cross", "csrf-out")
    assert refused == "another site: Forbidden: cross-site request (Sec-Fetch-Site: cross-site)"


@pytest.mark.parametrize(
    ("button", "expected"),
    [
        pytest.param(
            "#upload-big",
            ["2 MiB: 413", '"max_body_size":1048576', "uploads the handler saw: 0"],
            id="an upload over the limit is refused before the handler runs",
        ),
        pytest.param(
            "#upload-small",
            ["512 KiB: 200", '{"received":524288}', "uploads the handler saw: 1"],
            id="an upload under the limit reaches the handler whole",
        ),
        pytest.param(
            "#slow", ["slow: 504", '"title":"Gateway Timeout"'], id="a slow handler gets a 504"
        ),
        pytest.param(
            "#quick",
            ["quick: 200", '"remaining_at_start":'],
            id="a quick handler sees the time it has left",
        ),
        pytest.param(
            "#stalled",
            ['stalled: 200 {"chunk": 1}', "connection cut"],
            id="a stream that stalls is cut, never ended as if complete",
        ),
    ],
)
def test_guards_panel(showcase: Any, button: str, expected: list[str]) -> None:
    text = click_and_read(showcase, button, "guards-out")
    for part in expected:
        assert part in text
