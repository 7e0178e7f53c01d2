"""CSRF: a safe GET and a same-origin POST it lets through, beside starlette-csrf and the floor."""

from __future__ import annotations

from starlette_csrf import CSRFMiddleware as StarletteCSRF

from middlewares._core.signing import KeyRing
from middlewares._types import ASGIApp, Message
from middlewares.csrf import SESSION_KEY, CSRFMiddleware, _issue
from middlewares.testing import http_scope

from .harness import Case, PassThrough, respond_with

HOST = "app.example.com"
SECRET = "benchmark secret of at least 32 bytes"
SESSION_SECRET = "s" * 43


def _check_passed(label: str, messages: list[Message]) -> None:
    if messages[0]["status"] != 200:
        raise AssertionError(f"{label} refused the request: {messages[0]}")


def cases() -> list[Case]:
    app = respond_with(b"ok", [(b"content-type", b"text/plain")])
    peer = StarletteCSRF(app, SECRET)
    peer_token = peer._generate_csrf_token()
    # Token mode reads the session that SessionMiddleware would have loaded.
    ring = KeyRing([SECRET.encode()], salt=b"middlewares.csrf")
    token = _issue(ring, SESSION_SECRET)
    browser = {
        "host": HOST,
        "user-agent": "Mozilla/5.0",
        "accept": "text/html",
        "cookie": f"csrftoken={peer_token}",
    }
    get = http_scope("GET", "/items", headers=browser, scheme="https")
    post = http_scope(
        "POST",
        "/items",
        headers={
            **browser,
            "content-type": "application/x-www-form-urlencoded",
            "origin": f"https://{HOST}",
            "sec-fetch-site": "same-origin",
            "x-csrftoken": peer_token,
            "x-csrf-token": token,
        },
        scheme="https",
    )
    post["session"] = {SESSION_KEY: SESSION_SECRET}
    variants: dict[str, ASGIApp] = {
        "middlewares": CSRFMiddleware(app),
        "middlewares (token required)": CSRFMiddleware(
            app, secret=SECRET, require_token=True, header_name="x-csrf-token"
        ),
        "pass-through (floor)": PassThrough(app),
        "starlette-csrf": peer,
    }
    return [
        Case("csrf", "safe GET", variants, scope=get, baseline="starlette-csrf"),
        Case(
            "csrf",
            "same-origin POST",
            variants,
            scope=post,
            body=b"amount=10",
            baseline="starlette-csrf",
            check=_check_passed,
        ),
    ]
