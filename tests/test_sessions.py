"""Cookie sessions: Starlette compatibility, change detection, expiry, rotation, bad cookies."""

from __future__ import annotations

import json
from base64 import b64encode
from typing import Any

import httpx
import itsdangerous
import pytest
from hypothesis import given
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.datastructures import Secret
from starlette.middleware.sessions import SessionMiddleware as StarletteSessionMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from middlewares._core.cookies import parse_cookie
from middlewares._core.signing import KeyRing, b64decode
from middlewares._core.signing import b64encode as b64url
from middlewares.sessions import (
    DEFAULT_LIFETIME,
    Session,
    SessionCookieTooLarge,
    SessionMiddleware,
    find_cookie,
)
from middlewares.testing import http_scope, run_asgi

from .stores.helpers import START, Clock, app_doing, call, cookie_pair, result, set_cookies

pytestmark = [
    pytest.mark.anyio,
    # Short keys keep these tests readable; the warning itself is tested in test_sessions_compat.
    pytest.mark.filterwarnings("ignore:secret_key has a key shorter:UserWarning"),
]


def counter_app() -> Starlette:
    async def count(request: Request) -> JSONResponse:
        request.session["n"] = request.session.get("n", 0) + 1
        return JSONResponse(request.session["n"])

    async def peek(request: Request) -> JSONResponse:
        return JSONResponse(dict(request.session))

    return Starlette(routes=[Route("/", count), Route("/peek", peek)])


def sessions(action: Any = None, **options: Any) -> SessionMiddleware:
    options.setdefault("secret_key", "secret")
    options.setdefault("clock", Clock())
    return SessionMiddleware(app_doing(action), **options)


def put(key: str, value: Any) -> Any:
    def action(session: Session) -> None:
        session[key] = value

    return action


def read(session: Session) -> dict[str, Any]:
    return dict(session)


async def login(options: dict[str, Any] | None = None, data: Any = None) -> str:
    """A cookie holding ``data`` (default ``{"user": "ada"}``)."""
    recorded = await call(sessions(put("user", "ada") if data is None else data, **options or {}))
    return cookie_pair(recorded)


async def test_request_session_works_in_starlette_across_requests() -> None:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=SessionMiddleware(counter_app(), secret_key="s")),
        base_url="http://testserver",
    ) as client:
        counts = [(await client.get("/")).json() for _ in range(3)]
    assert counts == [1, 2, 3]


async def test_reads_the_cookie_starlette_wrote_with_the_same_secret() -> None:
    recorded = await call(StarletteSessionMiddleware(counter_app(), secret_key="s"))
    starlette_cookie = cookie_pair(recorded)
    ours = SessionMiddleware(counter_app(), secret_key=Secret("s"))
    recorded = await call(ours, starlette_cookie, path="/peek")
    assert result(recorded) == {"n": 1}
    assert set_cookies(recorded) == []
    recorded = await call(ours, starlette_cookie)
    assert result(recorded) == 2
    assert result(await call(ours, cookie_pair(recorded), path="/peek")) == {"n": 2}


async def test_starlette_cookie_older_than_max_age_is_refused() -> None:
    token = itsdangerous.TimestampSigner("s").sign(b64encode(b'{"n": 1}')).decode()
    clock = Clock(START + 10)
    fresh = sessions(read, secret_key="s", max_age=100, clock=clock)
    assert result(await call(fresh, f"session={token}")) == {"n": 1}
    clock.advance(10**10)
    assert result(await call(fresh, f"session={token}")) == {}


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param(b"[1, 2]", id="json that is not an object"),
        pytest.param(b"\xff\xfe", id="not utf-8"),
        pytest.param(b"{", id="truncated json"),
    ],
)
async def test_starlette_cookie_with_bad_content_gives_an_empty_session(payload: bytes) -> None:
    token = itsdangerous.TimestampSigner("s").sign(b64encode(payload)).decode()
    assert result(await call(sessions(read, secret_key="s"), f"session={token}")) == {}


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(b"abcde", id="not base64"),
        pytest.param(b"e30", id="valid payload without the signature of this key"),
    ],
)
async def test_starlette_shaped_cookie_that_does_not_verify_gives_an_empty_session(
    value: bytes,
) -> None:
    signer = itsdangerous.TimestampSigner("s" if value == b"abcde" else "other")
    token = signer.sign(value).decode()
    assert result(await call(sessions(read, secret_key="s"), f"session={token}")) == {}


async def test_other_cookies_alone_give_an_empty_session() -> None:
    recorded = await call(sessions(read), "theme=dark; lang=en")
    assert result(recorded) == {}


async def test_a_cookie_signed_with_a_retired_key_is_read_and_re_signed_with_the_new_one() -> None:
    old_cookie = await login({"secret_key": "old"})
    rotated = {"secret_key": ["new", "old"]}
    assert result(await call(sessions(read, **rotated), old_cookie)) == {"user": "ada"}
    recorded = await call(sessions(put("cart", [1]), **rotated), old_cookie)
    new_cookie = cookie_pair(recorded)
    assert result(await call(sessions(read, secret_key="new"), new_cookie)) == {
        "user": "ada",
        "cart": [1],
    }
    assert result(await call(sessions(read, secret_key="old"), new_cookie)) == {}


async def test_anonymous_visitor_who_never_writes_gets_no_cookie_and_no_vary() -> None:
    recorded = await call(sessions())
    assert set_cookies(recorded) == []
    assert recorded.header("vary") is None


async def test_reading_adds_vary_cookie_but_sends_no_cookie() -> None:
    recorded = await call(sessions(lambda s: s.get("user")))
    assert recorded.header("vary") == "Cookie"
    assert set_cookies(recorded) == []
    cookie = await login()
    recorded = await call(sessions(read), cookie)
    assert result(recorded) == {"user": "ada"}
    assert recorded.header("vary") == "Cookie"
    assert set_cookies(recorded) == []


async def test_vary_is_merged_with_the_apps_own() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        scope["session"].get("x")
        await send(
            {"type": "http.response.start", "status": 200, "headers": [(b"vary", b"Accept")]}
        )
        await send({"type": "http.response.body", "body": b""})

    recorded = await call(SessionMiddleware(app, secret_key="s"))
    assert recorded.header_all("vary") == ["Accept, Cookie"]


def append_to_cart(session: Session) -> None:
    session["cart"].append(3)


@pytest.mark.parametrize(
    ("action", "expected"),
    [
        pytest.param(append_to_cart, {"user": "ada", "cart": [1, 2, 3]}, id="nested append"),
        pytest.param(
            lambda s: s.get("cart").append(3),
            {"user": "ada", "cart": [1, 2, 3]},
            id="nested append after get",
        ),
        pytest.param(
            lambda s: next(v for v in s.values() if isinstance(v, list)).append(3),
            {"user": "ada", "cart": [1, 2, 3]},
            id="nested append through values",
        ),
        pytest.param(
            lambda s: dict(s.items())["cart"].append(3),
            {"user": "ada", "cart": [1, 2, 3]},
            id="nested append through items",
        ),
        pytest.param(
            lambda s: s.copy()["cart"].append(3),
            {"user": "ada", "cart": [1, 2, 3]},
            id="nested append through copy",
        ),
        pytest.param(
            lambda s: dict(s)["cart"].append(3),
            {"user": "ada", "cart": [1, 2, 3]},
            id="nested append through dict()",
        ),
        pytest.param(lambda s: s.popitem(), {"user": "ada"}, id="popitem"),
        pytest.param(lambda s: s.__ior__({"a": 1}), None, id="|= operator"),
        pytest.param(lambda s: s.setdefault("a", 1), None, id="setdefault of a new key"),
        pytest.param(lambda s: s.pop("cart"), {"user": "ada"}, id="pop"),
        pytest.param(lambda s: s.update(a=1), None, id="update"),
        pytest.param(lambda s: s.__delitem__("cart"), {"user": "ada"}, id="del"),
    ],
)
async def test_every_kind_of_change_is_saved(action: Any, expected: Any) -> None:
    cookie = await login(data=lambda s: s.update(user="ada", cart=[1, 2]))
    recorded = await call(sessions(action), cookie)
    stored = result(await call(sessions(read), cookie_pair(recorded)))
    if expected is None:
        expected = {"user": "ada", "cart": [1, 2], "a": 1}
    assert stored == expected


@pytest.mark.parametrize(
    "action",
    [
        pytest.param(put("user", "ada"), id="same value assigned again"),
        pytest.param(lambda s: s.setdefault("user", "bob"), id="setdefault of a present key"),
        pytest.param(lambda s: s.pop("missing", None), id="pop of a missing key"),
        pytest.param(
            lambda s: [list(s), len(s), "user" in s, list(s.keys()), list(s.values())], id="reads"
        ),
        pytest.param(lambda s: [list(s.items()), s["user"]], id="items and getitem"),
    ],
)
async def test_no_cookie_is_sent_when_content_did_not_change(action: Any) -> None:
    cookie = await login()
    recorded = await call(sessions(action), cookie)
    assert set_cookies(recorded) == []
    assert recorded.header("vary") == "Cookie"


async def test_mark_modified_saves_unchanged_content() -> None:
    cookie = await login()
    recorded = await call(sessions(lambda s: s.mark_modified()), cookie)
    assert len(set_cookies(recorded)) == 1


async def test_clearing_expires_the_cookie_with_the_same_path_and_domain() -> None:
    options = {"path": "/app", "domain": "example.com"}
    cookie = await login(options)
    recorded = await call(sessions(lambda s: s.clear(), **options), cookie)
    (header,) = set_cookies(recorded)
    assert header == (
        "session=null; path=/app; expires=Thu, 01 Jan 1970 00:00:00 GMT; httponly; "
        "samesite=lax; domain=example.com"
    )


async def test_clearing_without_a_valid_session_sends_nothing() -> None:
    recorded = await call(sessions(lambda s: s.clear()), "session=forged.value.x.y")
    assert set_cookies(recorded) == []


async def test_cookie_attributes_follow_the_arguments() -> None:
    clock = Clock()
    recorded = await call(
        sessions(
            put("a", 1),
            session_cookie="__Host-sid",
            same_site="strict",
            https_only=True,
            partitioned=True,
            max_age=3600,
            clock=clock,
        )
    )
    (header,) = set_cookies(recorded)
    attributes = header.split("; ")[1:]
    assert attributes == [
        "path=/",
        "Max-Age=3600",
        "httponly",
        "samesite=strict",
        "secure",
        "partitioned",
    ]


async def test_max_age_none_sends_a_browser_session_cookie_that_still_expires_on_the_server() -> (
    None
):
    clock = Clock()
    cookie_header = set_cookies(await call(sessions(put("a", 1), max_age=None, clock=clock)))[0]
    assert "Max-Age" not in cookie_header
    assert "Expires" not in cookie_header
    cookie = cookie_header.split(";")[0]
    clock.advance(DEFAULT_LIFETIME)
    assert result(await call(sessions(read, max_age=None, clock=clock), cookie)) == {"a": 1}
    clock.advance(1)
    assert result(await call(sessions(read, max_age=None, clock=clock), cookie)) == {}


@pytest.mark.parametrize("max_age", [0, -10])
async def test_zero_or_negative_max_age_is_sent_as_starlette_does(max_age: int) -> None:
    (header,) = set_cookies(await call(sessions(put("a", 1), max_age=max_age)))
    assert f"; Max-Age={max_age};" in header


async def test_a_copied_cookie_stops_working_after_max_age() -> None:
    clock = Clock()
    cookie = await login({"max_age": 100, "clock": clock})
    clock.advance(100)
    assert result(await call(sessions(read, max_age=100, clock=clock), cookie)) == {"user": "ada"}
    clock.advance(1)
    assert result(await call(sessions(read, max_age=100, clock=clock), cookie)) == {}


async def test_rolling_renews_at_most_every_interval_and_idle_timeout_ends_quiet_sessions() -> None:
    clock = Clock()
    options = {"clock": clock, "rolling": 60, "idle_timeout": 300}
    cookie = await login(options)
    clock.advance(30)
    assert set_cookies(await call(sessions(read, **options), cookie)) == []
    clock.advance(30)
    renewed = await call(sessions(**options), cookie)  # renewed even if the app never looks
    cookie = cookie_pair(renewed)
    assert renewed.header("vary") == "Cookie"
    clock.advance(300)
    assert result(await call(sessions(read, **options), cookie)) == {"user": "ada"}
    clock.advance(1)
    assert result(await call(sessions(read, **options), cookie)) == {}


async def test_absolute_timeout_ends_a_session_however_active() -> None:
    clock = Clock()
    options = {"clock": clock, "rolling": 0, "absolute_timeout": 1000}
    cookie = await login(options)
    for _ in range(10):
        clock.advance(100)
        cookie = cookie_pair(await call(sessions(read, **options), cookie))
    assert result(await call(sessions(read, **options), cookie)) == {"user": "ada"}
    clock.advance(1)
    assert result(await call(sessions(read, **options), cookie)) == {}


async def test_regenerate_restarts_the_absolute_lifetime() -> None:
    clock = Clock()
    options = {"clock": clock, "absolute_timeout": 1000}
    cookie = await login(options)
    clock.advance(900)
    cookie = cookie_pair(await call(sessions(lambda s: s.regenerate(), **options), cookie))
    clock.advance(900)
    assert result(await call(sessions(read, **options), cookie)) == {"user": "ada"}


async def test_a_cookie_over_4096_bytes_fails_loudly_instead_of_being_dropped() -> None:
    with pytest.raises(SessionCookieTooLarge, match=r"would be \d+ bytes, over the 4096"):
        await call(sessions(put("blob", "x" * 4000)))


async def test_a_cookie_just_under_the_limit_is_sent() -> None:
    (header,) = set_cookies(await call(sessions(put("blob", "x" * 2800))))
    assert 3800 < len(header) <= 4096


def forge(payload: bytes, key: str = "secret", stamps: bytes = b"1700000000.1700000000") -> str:
    value = stamps + b"." + b64url(payload)
    return "session=" + KeyRing([key.encode()], salt=b"middlewares.sessions").sign(value).decode()


@pytest.mark.parametrize(
    "cookie",
    [
        pytest.param("session=not-a-session", id="garbage"),
        pytest.param(forge(b'{"user":"eve"}', key="other"), id="wrong key"),
        pytest.param(forge(b'{"user":"eve"}')[:-3], id="truncated signature"),
        pytest.param(forge(b'{"user":"eve"}').replace("eyJ", "eyK"), id="tampered payload"),
        pytest.param(forge(b"\xff\xfe"), id="signed bytes that are not utf-8"),
        pytest.param(forge(b"[1]"), id="signed json that is not an object"),
        pytest.param(forge(b"{" * 100_000), id="signed json nested past the recursion limit"),
        pytest.param(forge(b'{"a":1}', stamps=b"x.y"), id="signed bad timestamps"),
        pytest.param(forge(b'{"a":1}', stamps=b"1.1"), id="expired"),
        pytest.param("session=a.b.!!!.c", id="bad base64"),
        pytest.param('session="a.b"', id="quoted"),
    ],
)
async def test_bad_cookies_give_an_empty_session(cookie: str) -> None:
    recorded = await call(sessions(read), cookie)
    assert result(recorded) == {}
    assert set_cookies(recorded) == []


async def test_forged_payload_signed_with_the_right_key_is_read() -> None:
    # The positive control for the table above: only the defect makes those fail.
    assert result(await call(sessions(read), forge(b'{"user":"eve"}'))) == {"user": "eve"}


@given(st.binary(max_size=300))
async def test_arbitrary_cookie_bytes_never_raise(raw: bytes) -> None:
    scope = http_scope(headers=[(b"cookie", b"session=" + raw), (b"cookie", raw)])
    recorded = await run_asgi(sessions(read), scope)
    assert result(recorded) == {}


async def test_session_cookie_is_found_among_others_and_in_later_cookie_fields() -> None:
    cookie = await login()
    scope = http_scope(headers=[(b"cookie", b"a=1"), (b"cookie", f"b=2; {cookie}".encode())])
    assert result(await run_asgi(sessions(read), scope)) == {"user": "ada"}


async def test_other_scopes_pass_through_untouched() -> None:
    seen: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(scope)

    scope = {"type": "lifespan", "asgi": {"version": "3.0"}}
    await SessionMiddleware(app, secret_key="s")(scope, None, None)  # type: ignore[arg-type]
    assert seen == [{"type": "lifespan", "asgi": {"version": "3.0"}}]


def test_session_is_a_dict_with_a_readable_repr() -> None:
    session = Session(a=1)
    assert isinstance(session, dict)
    assert repr(session) == "Session({'a': 1})"
    assert session.id is None
    assert not session.accessed
    session.mark_accessed()
    assert session.accessed


@pytest.mark.parametrize(
    ("options", "message"),
    [
        pytest.param({"secret_key": []}, "secret_key must be a key", id="no key"),
        pytest.param({"max_age": 1.5}, "max_age must be a number", id="fractional max_age"),
        pytest.param({"max_age": True}, "max_age must be a number", id="boolean max_age"),
        pytest.param({"same_site": None}, "same_site must be", id="same_site none"),
        pytest.param({"same_site": "none"}, "requires a secure cookie", id="none without https"),
        pytest.param({"session_cookie": "a b"}, "HTTP token", id="bad cookie name"),
        pytest.param({"idle_timeout": -1, "rolling": 0}, "idle_timeout must be", id="negative"),
        pytest.param({"idle_timeout": 60}, "set rolling below 60", id="idle without rolling"),
        pytest.param({"idle_timeout": 60, "rolling": 60}, "got rolling=60", id="rolling too slow"),
        pytest.param({"rolling": "1"}, "rolling must be", id="rolling not a number"),
    ],
)
def test_bad_configuration_is_refused_naming_the_argument(
    options: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        SessionMiddleware(app_doing(), **{"secret_key": "s", **options})


async def test_json_in_the_cookie_is_compact() -> None:
    cookie = await login()
    data = cookie.split(".")[2]
    assert json.loads(b64decode(data.encode())) == {"user": "ada"}


@pytest.mark.parametrize(
    "header",
    [
        pytest.param(b"session=a", id="alone"),
        pytest.param(b"x=session=b; session=a", id="name inside another value"),
        pytest.param(b"xsession=b; session=a", id="name as a suffix of another name"),
        pytest.param(b"session; session=a", id="pair without equals first"),
        pytest.param(b"sessionx=b; session=a", id="name as a prefix of another name"),
        pytest.param(b' session \t= "a" ; session=b', id="whitespace and quotes"),
        pytest.param(b"a=1;session=", id="empty value"),
        pytest.param(b"other=1", id="absent"),
    ],
)
def test_find_cookie_agrees_with_parse_cookie(header: bytes) -> None:
    expected = parse_cookie([header]).get("session")
    found = find_cookie([(b"cookie", header)], b"session")
    assert (None if found is None else found.decode("latin-1")) == expected


@given(st.lists(st.binary(max_size=40).map(lambda b: b.replace(b"\x00", b"")), max_size=3))
def test_find_cookie_agrees_with_parse_cookie_on_any_bytes(fields: list[bytes]) -> None:
    fields = [b"session=" + field if i % 2 else field for i, field in enumerate(fields)]
    expected = parse_cookie(fields).get("session")
    found = find_cookie([(b"cookie", field) for field in fields], b"session")
    assert (None if found is None else found.decode("latin-1")) == expected


async def test_cookie_sessions_have_no_id() -> None:
    assert result(await call(sessions(lambda s: s.id))) is None


@pytest.mark.parametrize("secret_key", [None, 0, 1.5, True])
def test_a_secret_key_that_is_not_a_key_is_refused(secret_key: Any) -> None:
    with pytest.raises(TypeError, match="secret_key must be a str, bytes"):
        SessionMiddleware(app_doing(), secret_key=secret_key)
