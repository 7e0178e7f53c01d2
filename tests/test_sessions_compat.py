"""Switching from Starlette's SessionMiddleware: the same Set-Cookie bytes, Starlette's Session
surface, a typed accessor, and the first-hour traps (weak keys, values JSON cannot encode)."""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.middleware.sessions import SessionMiddleware as StarletteSessionMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from middlewares import Session, SessionMiddleware, get_session
from middlewares.testing import http_scope

from .typecheck import mypy_strict

pytestmark = pytest.mark.anyio

KEY = "a-test-key-that-is-32-bytes-long"


def site() -> Starlette:
    async def login(request: Request) -> JSONResponse:
        request.session["user"] = "ada"
        return JSONResponse({})

    async def logout(request: Request) -> JSONResponse:
        request.session.clear()
        return JSONResponse({})

    async def touch(request: Request) -> JSONResponse:
        session = get_session(request)
        session["user"] = session["user"]  # the same value: nothing changes...
        if "force" in request.query_params:
            session.mark_modified()  # ...unless the app insists
        return JSONResponse({"modified": session.modified})

    return Starlette(
        routes=[Route("/login", login), Route("/logout", logout), Route("/touch", touch)]
    )


async def set_cookies(middleware: Any, **options: Any) -> tuple[str, str]:
    """The Set-Cookie of a login, then of a logout with that session."""
    app = middleware(site(), secret_key=KEY, **options)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        login = (await client.get("/login")).headers["set-cookie"]
        client.cookies.clear()  # sent by hand: the jar would hold back Secure or Domain ones
        cookie = {"cookie": login.partition(";")[0]}
        logout = (await client.get("/logout", headers=cookie)).headers["set-cookie"]
    return login, logout


@pytest.mark.parametrize(
    "options",
    [
        pytest.param({}, id="defaults"),
        pytest.param({"max_age": None}, id="browser-session cookie"),
        pytest.param({"max_age": 60, "path": "/app"}, id="max age and path"),
        pytest.param({"same_site": "strict"}, id="same site strict"),
        pytest.param({"https_only": True, "same_site": "none"}, id="secure, same site none"),
        pytest.param({"domain": "example.com"}, id="domain"),
        pytest.param({"https_only": True, "partitioned": True}, id="partitioned"),
        pytest.param(
            {"https_only": True, "domain": "example.com", "partitioned": True, "max_age": 5},
            id="everything at once",
        ),
    ],
)
async def test_set_cookie_is_starlettes_byte_for_byte(options: dict[str, Any]) -> None:
    starlette_login, starlette_logout = await set_cookies(StarletteSessionMiddleware, **options)
    our_login, our_logout = await set_cookies(SessionMiddleware, **options)
    # The signed value differs (ours carries its timestamps); every attribute is the same.
    assert our_login.partition(";")[2] == starlette_login.partition(";")[2]
    assert our_logout == starlette_logout


async def test_a_starlette_session_object_surface() -> None:
    session = Session({"user": "ada"})
    assert session == {"user": "ada"}
    assert not session.accessed
    assert not session.modified
    session["cart"] = [1]
    assert session.modified
    assert session.accessed
    session.modified = False  # does not undo a real change
    assert session.modified


async def test_mark_modified_forces_a_write_of_unchanged_content() -> None:
    app = SessionMiddleware(site(), secret_key=KEY)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        await client.get("/login")
        unchanged = await client.get("/touch")
        forced = await client.get("/touch?force")
    assert unchanged.json() == {"modified": False}
    assert "set-cookie" not in unchanged.headers
    assert forced.json() == {"modified": True}
    assert "set-cookie" in forced.headers


def test_setting_modified_is_mark_modified() -> None:
    session = Session({"user": "ada"})
    session.modified = True
    assert session.modified
    assert session.accessed


def test_a_session_holding_a_value_json_cannot_encode_counts_as_modified() -> None:
    session = Session()
    session["when"] = datetime.date(2024, 1, 1)
    assert session.modified


async def test_a_value_json_cannot_encode_is_named_by_its_key() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        scope["session"]["user"] = "ada"
        scope["session"]["when"] = datetime.date(2024, 1, 1)
        await send({"type": "http.response.start", "status": 200, "headers": []})

    middleware = SessionMiddleware(app, secret_key=KEY)
    transport = httpx.ASGITransport(app=middleware)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        with pytest.raises(TypeError, match=r"session\['when'\] cannot be stored"):
            await client.get("/")


def test_get_session_reads_a_scope_and_refuses_a_request_without_the_middleware() -> None:
    scope = http_scope()
    with pytest.raises(RuntimeError, match=r"wrap the app in middlewares\.SessionMiddleware"):
        get_session(scope)
    scope["session"] = session = Session()
    assert get_session(scope) is session
    assert get_session(Request(scope)) is session


def test_get_session_passes_mypy_strict_in_user_code(tmp_path: Path) -> None:
    checked = mypy_strict(
        """
            from starlette.requests import Request
            from middlewares import get_session

            def login(request: Request) -> None:
                session = get_session(request)
                session.regenerate()
                session["user"] = "ada"
            """,
        tmp_path,
    )
    assert checked.returncode == 0, checked.stdout


@pytest.mark.parametrize(
    "secret_key",
    [
        pytest.param("x", id="one letter"),
        pytest.param("change-me", id="a placeholder"),
        pytest.param([KEY, "old"], id="a short old key in a rotation"),
        pytest.param(b"\x00" * 31, id="31 bytes"),
    ],
)
def test_weak_secret_keys_draw_a_warning(secret_key: Any) -> None:
    with pytest.warns(UserWarning, match="shorter than 32 bytes.*token_urlsafe"):
        SessionMiddleware(site(), secret_key=secret_key)


def test_a_32_byte_key_draws_no_warning() -> None:
    SessionMiddleware(site(), secret_key=KEY)  # filterwarnings = error would fail here
