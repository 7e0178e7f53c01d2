"""Sessions: the cost per request of a signed-cookie session, against Starlette's
SessionMiddleware and starsessions (CookieStore), on the same requests in the same run."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from starlette.middleware.sessions import SessionMiddleware as StarletteSessionMiddleware
from starsessions import CookieStore, SessionAutoloadMiddleware
from starsessions import SessionMiddleware as StarSessionsMiddleware

from middlewares._types import ASGIApp, Message, Receive, Scope, Send
from middlewares.sessions import SessionMiddleware
from middlewares.testing import http_scope

from .harness import Case

SECRET = "benchmark-secret-of-at-least-32-bytes"
# Each library gets its own cookie name so that one Cookie header carries all three.
NAMES = {"middlewares": "ours", "starsessions": "starsess", "starlette": "starlette"}


def session_app(action: Callable[[Any], None]) -> ASGIApp:
    """An inner app that uses the session the way ``request.session`` does, then answers."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        session = scope["session"]
        mark_accessed = getattr(session, "mark_accessed", None)
        if mark_accessed is not None:  # what Starlette's request.session does
            mark_accessed()
        action(session)
        await send(
            {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]}
        )
        await send({"type": "http.response.body", "body": b"ok"})

    return app


def variants(action: Callable[[Any], None]) -> dict[str, ASGIApp]:
    inner = session_app(action)
    return {
        "middlewares": SessionMiddleware(
            inner, secret_key=SECRET, session_cookie=NAMES["middlewares"]
        ),
        "starsessions": StarSessionsMiddleware(
            SessionAutoloadMiddleware(inner),
            store=CookieStore(secret_key=SECRET),
            cookie_name=NAMES["starsessions"],
            cookie_https_only=False,
            lifetime=14 * 24 * 3600,
        ),
        "starlette": StarletteSessionMiddleware(
            inner, secret_key=SECRET, session_cookie=NAMES["starlette"]
        ),
    }


def login(session: Any) -> None:
    session["user_id"] = 42
    session["csrf"] = "0f3d8a7c2b9e4d1f8a6c3e5b7d9f1a2c"
    session["profile"] = {"name": "Ada Lovelace", "roles": ["admin", "editor"]}


def read(session: Any) -> None:
    session.get("user_id")


def read_nested(session: Any) -> None:
    # Hands the app a dict it could change in place: ours must serialise to compare.
    session.get("profile")


def count(session: Any) -> None:
    session["n"] = session.get("n", 0) + 1


async def _cookie(app: ASGIApp) -> str:
    messages: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        messages.append(message)

    await app(http_scope(), receive, send)
    for key, value in messages[0]["headers"]:
        if key.lower() == b"set-cookie":
            return bytes(value).decode().split(";", 1)[0]
    raise RuntimeError("no session cookie was set")


def _cookie_header() -> str:
    async def all_cookies() -> list[str]:
        return [await _cookie(app) for app in variants(login).values()]

    return "; ".join(asyncio.run(all_cookies()))


def _expect(cookie: bool) -> Callable[[str, list[Message]], None]:
    def check(label: str, messages: list[Message]) -> None:
        sent = any(k.lower() == b"set-cookie" for k, _ in messages[0].get("headers", ()))
        if label != "starsessions" and sent != cookie:  # starsessions writes on every response
            raise AssertionError(f"{label}: Set-Cookie sent={sent}, expected {cookie}")

    return check


def cases() -> list[Case]:
    with_cookie = http_scope(headers={"cookie": _cookie_header()})
    return [
        Case(
            "sessions",
            "no cookie, app reads the session",
            variants(read),
            check=_expect(False),
        ),
        Case(
            "sessions",
            "valid cookie, read only",
            variants(read),
            scope=with_cookie,
            check=_expect(False),
        ),
        Case(
            "sessions",
            "valid cookie, read a nested value",
            variants(read_nested),
            scope=with_cookie,
            check=_expect(False),
        ),
        Case(
            "sessions",
            "valid cookie, session modified",
            variants(count),
            scope=with_cookie,
            check=_expect(True),
        ),
    ]
