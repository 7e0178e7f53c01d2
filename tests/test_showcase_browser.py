"""The showcase driven in headless Chromium: each middleware seen working from the page."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack
from typing import Any

import pytest

from examples.showcase import api_app, page_app

LiveServer = Callable[..., AbstractContextManager[str]]


@pytest.fixture
def showcase(live_server: LiveServer, page: Any) -> Iterator[Any]:
    """The page served on one port, its API on another, the page open in Chromium."""
    with ExitStack() as stack:
        # Each side needs the other's address: serve both, then tell the page where the API is.
        page_application = page_app()
        page_url = stack.enter_context(live_server(page_application))
        api_url = stack.enter_context(live_server(api_app([page_url])))
        page_application.state.api_url = api_url
        page.goto(page_url)
        page.wait_for_function("document.getElementById('counter').textContent !== '-'")
        yield page


def click_and_read(page: Any, button: str, output: str) -> str:
    page.click(button)
    page.wait_for_function(
        f"!['-', 'running...'].includes(document.getElementById('{output}').textContent)"
    )
    text: str = page.text_content(f"#{output}")
    page.evaluate(f"document.getElementById('{output}').textContent = '-'")
    return text


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
    showcase.wait_for_function("document.getElementById('sizes').textContent !== '-'")
    assert showcase.text_content("#encoding") in {"zstd", "br", "gzip"}
    transfer = int(showcase.text_content("#transfer"))
    decoded = int(showcase.text_content("#decoded").split()[0])
    assert transfer * 4 < decoded  # compressed well, and Chromium decoded it
    metrics = showcase.eval_on_selector_all(
        "#timing-table tr.metric", "rows => rows.map(r => r.cells[0].textContent)"
    )
    assert metrics == ["app", "db", "render"]


def test_event_stream_arrives_event_by_event(showcase: Any) -> None:
    showcase.click("#events")
    showcase.wait_for_function(
        "document.getElementById('events-out').textContent.includes('1 of 5')"
    )
    first_seen = showcase.text_content("#events-out")
    assert "5 of 5" not in first_seen  # the first event was shown before the stream ended
    showcase.wait_for_function(
        "document.getElementById('events-out').textContent.includes('5 of 5')"
    )


def test_session_counter_and_cookie(showcase: Any) -> None:
    showcase.click("#count")
    showcase.wait_for_function("document.getElementById('counter').textContent === '1'")
    showcase.click("#count")
    showcase.wait_for_function("document.getElementById('counter').textContent === '2'")
    showcase.reload()
    showcase.wait_for_function("document.getElementById('counter').textContent === '2'")
    assert showcase.text_content("#cookies") == '""'  # HttpOnly: invisible to scripts
    cookie = next(c for c in showcase.context.cookies() if c["name"] == "session")
    assert cookie["httpOnly"] is True
    assert cookie["sameSite"] == "Lax"
    showcase.click("#reset")
    showcase.wait_for_function("document.getElementById('counter').textContent === '0'")


def test_offloaded_cpu_task_leaves_the_server_responsive(showcase: Any) -> None:
    showcase.evaluate(
        "window.pings = 0; setInterval(async () => { await fetch('/ping'); window.pings++; }, 20)"
    )
    showcase.click("#cpu")
    showcase.wait_for_function("document.getElementById('cpu-out').textContent.startsWith('{')")
    assert '"primes"' in showcase.text_content("#cpu-out")
    # Pings kept being answered while the task ran: the event loop was never held.
    assert showcase.evaluate("window.pings") > 0
