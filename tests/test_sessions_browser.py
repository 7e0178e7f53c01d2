"""Headless Chromium keeping SessionMiddleware's cookie: the attributes it stores and a
counter that survives reloads, a logout that really logs out."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

from middlewares.sessions import SessionMiddleware
from middlewares.stores import MemoryStore

LiveServer = Callable[..., AbstractContextManager[str]]


def counter_site(**options: Any) -> SessionMiddleware:
    def count(request: Request) -> HTMLResponse:
        request.session["visits"] = request.session.get("visits", 0) + 1
        return HTMLResponse(f"<p id=visits>{request.session['visits']}</p>")

    def logout(request: Request) -> HTMLResponse:
        request.session.clear()
        return HTMLResponse("<p id=visits>bye</p>")

    app = Starlette(routes=[Route("/app/", count), Route("/app/logout", logout)])
    return SessionMiddleware(app, secret_key="browser-test-" * 3, path="/app", **options)


def test_chromium_stores_the_cookie_attributes_and_the_counter_persists(
    page: Any, live_server: LiveServer
) -> None:
    with live_server(counter_site(same_site="strict")) as url:
        visits = []
        for _ in range(3):
            page.goto(f"{url}/app/")
            visits.append(page.inner_text("#visits"))
        (cookie,) = page.context.cookies()
        assert visits == ["1", "2", "3"]
        assert cookie["name"] == "session"
        assert cookie["httpOnly"] is True
        assert cookie["sameSite"] == "Strict"
        assert cookie["path"] == "/app"
        assert cookie["secure"] is False
        assert cookie["expires"] > 0  # a persistent cookie: max_age is 14 days
        assert page.evaluate("document.cookie") == ""  # HttpOnly hides it from scripts
        page.goto(f"{url}/app/logout")
        assert page.context.cookies() == []
        page.goto(f"{url}/app/")
        assert page.inner_text("#visits") == "1"


def test_chromium_keeps_a_store_session_across_reloads_and_forgets_it_on_logout(
    page: Any, live_server: LiveServer
) -> None:
    store = MemoryStore()
    with live_server(counter_site(store=store, max_age=None)) as url:
        for expected in ["1", "2"]:
            page.goto(f"{url}/app/")
            assert page.inner_text("#visits") == expected
        (cookie,) = page.context.cookies()
        assert cookie["expires"] == -1  # max_age=None: a browser-session cookie
        assert len(store) == 1
        page.goto(f"{url}/app/logout")
        assert page.context.cookies() == []
        assert len(store) == 0
