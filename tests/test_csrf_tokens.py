"""CSRFMiddleware's session-bound tokens (limits.md §2, traps 28-34): from a header or a form
field read as a stream, with the body handed to the app byte for byte."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from middlewares._core.outcome import get_outcome
from middlewares._core.respond import send_response
from middlewares._types import ASGIApp, Message, Receive, Scope, Send
from middlewares.csrf import CSRFMiddleware, csrf_token, rotate_csrf_token
from middlewares.sessions import SessionMiddleware
from middlewares.testing import Recorded, http_scope, run_asgi, websocket_scope

pytestmark = pytest.mark.anyio

HOST = "app.example.com"
CSRF_SECRET = "a-csrf-secret-of-at-least-32-bytes"
SITE = f"https://{HOST}"
BOUNDARY = b"----formboundary"
MULTIPART = "multipart/form-data; boundary=" + BOUNDARY.decode()
URLENCODED = "application/x-www-form-urlencoded"


class Site:
    """A session-backed app: ``GET /form`` returns a token, ``POST /login`` rotates it, any
    other request records the messages it received."""

    def __init__(
        self, secret: Any = CSRF_SECRET, clock: Callable[[], float] | None = None, **options: Any
    ) -> None:
        self.seen: list[list[Message]] = []
        inner = CSRFMiddleware(self.endpoint, secret=secret, **options)
        extra = {} if clock is None else {"clock": clock}
        self.app: ASGIApp = SessionMiddleware(
            inner, secret_key="session-secret-of-at-least-32-bytes", **extra
        )

    async def endpoint(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            await receive()
            await send({"type": "websocket.accept"})
            await send({"type": "websocket.close", "code": 1000})
            return
        if scope["path"] == "/form":
            await send_response(send, 200, [], csrf_token(scope).encode())
            return
        if scope["path"] == "/login":
            rotate_csrf_token(scope)
            scope["session"]["user"] = "ada"
        messages = []
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request" or not message.get("more_body"):
                break
        self.seen.append(messages)
        await send_response(send, 200, [], b"posted")

    async def issue(self, cookie: str = "") -> tuple[str, str]:
        """GET the form; return the session cookie and the token."""
        headers = {"host": HOST} | ({"cookie": cookie} if cookie else {})
        recorded = await run_asgi(self.app, http_scope("GET", "/form", headers=headers))
        set_cookie = recorded.header("set-cookie")
        return (set_cookie.split(";")[0] if set_cookie else cookie), recorded.body.decode()

    async def post(
        self, cookie: str, body: bytes | list[bytes] = b"", path: str = "/submit", **headers: str
    ) -> Recorded:
        fields = {"host": HOST, "cookie": cookie, "sec-fetch-site": "same-origin"}
        fields |= {k.replace("_", "-"): v for k, v in headers.items()}
        present = {name: value for name, value in fields.items() if value}  # "" leaves it out
        return await run_asgi(self.app, http_scope("POST", path, headers=present), body=body)


def multipart(*parts: tuple[bytes, bytes]) -> bytes:
    body = b""
    for disposition, content in parts:
        body += b"--" + BOUNDARY + b"\r\nContent-Disposition: form-data; " + disposition
        body += b"\r\n\r\n" + content + b"\r\n"
    return body + b"--" + BOUNDARY + b"--\r\n"


async def test_token_in_the_header_passes_and_a_wrong_one_is_refused() -> None:
    site = Site(require_token=True)
    cookie, token = await site.issue()
    assert (await site.post(cookie, x_csrftoken=token)).status == 200
    wrong = await site.post(cookie, x_csrftoken=token[:-2] + "AA")
    assert wrong.status == 403
    assert b"not valid" in wrong.body
    missing = await site.post(cookie)
    assert missing.status == 403
    assert b"missing" in missing.body
    assert (await site.post(cookie, x_csrftoken="no-dot-in-it")).status == 403


async def test_every_call_gives_a_new_token_and_all_of_them_verify() -> None:
    site = Site(require_token=True)
    cookie, first = await site.issue()
    _, second = await site.issue(cookie)
    assert first != second
    for token in (first, second):
        assert (await site.post(cookie, x_csrftoken=token)).status == 200


async def test_a_token_from_another_session_is_refused() -> None:
    site = Site(require_token=True)
    _, token = await site.issue()
    other_cookie, _ = await site.issue()
    assert (await site.post(other_cookie, x_csrftoken=token)).status == 403
    assert (await site.post("", x_csrftoken=token)).status == 403  # no session at all


@pytest.mark.parametrize(
    "field",
    [pytest.param("csrftoken", id="default field"), pytest.param("_token", id="custom field")],
)
async def test_token_after_a_5_mb_file_part_in_multipart_trap_28(field: str) -> None:
    site = Site(require_token=True, form_field=field)
    cookie, token = await site.issue()
    body = multipart(
        (b'name="upload"; filename="big.bin"', b"\x00\xff" * (5 * 1024 * 1024 // 2)),
        (b'name="' + field.encode() + b'"', token.encode()),
    )
    chunks = [body[i : i + 65536] for i in range(0, len(body), 65536)]
    recorded = await site.post(cookie, chunks, content_type=MULTIPART)
    assert recorded.status == 200
    [messages] = site.seen
    assert b"".join(m["body"] for m in messages) == body
    assert [len(m["body"]) for m in messages] == [len(c) for c in chunks]


async def test_urlencoded_token_field_and_the_app_reads_the_same_messages_trap_29() -> None:
    site = Site(require_token=True)
    cookie, token = await site.issue()
    sent: list[Message] = [
        {"type": "http.request", "body": b"name=ada&", "more_body": True},
        {"type": "http.request", "body": b"csrftoken=" + token.encode(), "more_body": True},
        {"type": "http.request", "body": b"&note=hi", "more_body": False},
    ]
    queue = list(sent)

    async def receive() -> Message:
        return queue.pop(0) if queue else {"type": "http.disconnect"}

    headers = {"host": HOST, "cookie": cookie, "origin": SITE, "content-type": URLENCODED}
    scope = http_scope("POST", "/submit", headers=headers, scheme="https")
    recorded = await run_asgi(site.app, scope, receive=receive)
    assert recorded.status == 200
    # The very messages the server sent, in order: the check consumed nothing.
    assert len(site.seen[0]) == 3
    assert all(a is b for a, b in zip(site.seen[0], sent, strict=True))


async def test_after_the_replayed_body_the_app_hears_the_server_again() -> None:
    heard: list[str] = []

    async def listens(scope: Scope, receive: Receive, send: Send) -> None:
        while (await receive()).get("more_body"):
            pass
        await send_response(send, 200, [], b"ok")
        heard.append((await receive())["type"])

    site = Site(require_token=True)
    cookie, token = await site.issue()
    stack = SessionMiddleware(
        CSRFMiddleware(listens, secret=CSRF_SECRET, require_token=True),
        secret_key="session-secret-of-at-least-32-bytes",
    )
    headers = {"host": HOST, "cookie": cookie, "content-type": URLENCODED}
    body = [b"csrftoken=" + token.encode(), b"&more=1"]
    recorded = await run_asgi(stack, http_scope("POST", "/", headers=headers), body=body)
    assert recorded.status == 200
    assert heard == ["http.disconnect"]


async def test_the_body_is_not_read_when_the_header_carries_the_token() -> None:
    site = Site(require_token=True)
    cookie, token = await site.issue()
    recorded = await site.post(
        cookie, [b"csrftoken=x", b"&a=1"], content_type=URLENCODED, x_csrftoken=token
    )
    assert recorded.status == 200
    assert [m["body"] for m in site.seen[0]] == [b"csrftoken=x", b"&a=1"]


async def test_a_json_body_is_never_read_for_a_token() -> None:
    site = Site(require_token=True)
    cookie, _ = await site.issue()
    recorded = await site.post(cookie, b'{"csrftoken": "x"}', content_type="application/json")
    assert recorded.status == 403
    assert b"missing" in recorded.body


@pytest.mark.parametrize(
    ("body", "headers"),
    [
        pytest.param(b"a" * 2000, {"content_length": "2000"}, id="Content-Length over the limit"),
        pytest.param([b"a" * 100] * 20, {}, id="chunked body crossing the limit"),
        pytest.param([b"a" * 100] * 20, {"content_length": "10"}, id="Content-Length that lies"),
        pytest.param([b"a" * 100] * 20, {"content_length": "-5"}, id="negative Content-Length"),
        pytest.param(b"a" * 2000, {"content_length": "9" * 5000}, id="5,000-digit Content-Length"),
    ],
)
async def test_oversized_form_is_413_never_500_and_never_read_past_the_limit_trap_34(
    body: bytes | list[bytes], headers: dict[str, str]
) -> None:
    site = Site(require_token=True, max_body_size=1000)
    cookie, _ = await site.issue()
    chunks = [body] if isinstance(body, bytes) else body
    reads = 0

    async def receive() -> Message:
        nonlocal reads
        reads += 1
        more = reads < len(chunks)
        return {"type": "http.request", "body": chunks[reads - 1], "more_body": more}

    fields = {"host": HOST, "cookie": cookie, "origin": SITE, "content-type": URLENCODED}
    fields |= {k.replace("_", "-"): v for k, v in headers.items()}
    scope = http_scope("POST", "/submit", headers=fields, scheme="https")
    recorded = await run_asgi(site.app, scope, receive=receive)
    assert recorded.status == 413
    assert recorded.header("connection") == "close"
    assert get_outcome(scope) == "too_large"
    assert reads <= 11  # the 1000-byte limit crossed on the 11th 100-byte chunk at most
    assert site.seen == []


async def test_client_leaving_while_the_form_is_read_ends_quietly() -> None:
    site = Site(require_token=True)
    cookie, _ = await site.issue()
    script: list[Message] = [
        {"type": "http.request", "body": b"a=1", "more_body": True},
        {"type": "http.disconnect"},
    ]

    async def receive() -> Message:
        return script.pop(0)

    fields = {"host": HOST, "cookie": cookie, "content-type": URLENCODED}
    scope = http_scope("POST", "/submit", headers=fields)
    recorded = await run_asgi(site.app, scope, receive=receive, validate=False)
    assert recorded.messages == []
    assert get_outcome(scope) == "disconnect"
    assert site.seen == []


async def test_token_from_worker_a_validates_on_worker_b_and_across_key_rotation_trap_30() -> None:
    worker_a, worker_b = Site(require_token=True), Site(require_token=True)
    cookie, token = await worker_a.issue()
    assert (await worker_b.post(cookie, x_csrftoken=token)).status == 200
    rotated = Site(
        secret=["a-new-csrf-secret-of-at-least-32-bytes", CSRF_SECRET], require_token=True
    )
    assert (await rotated.post(cookie, x_csrftoken=token)).status == 200
    stranger = Site(secret="another-csrf-secret-of-at-least-32-bytes", require_token=True)
    assert (await stranger.post(cookie, x_csrftoken=token)).status == 403


async def test_a_form_open_two_hours_still_submits_and_login_rotates_trap_31() -> None:
    now = [1_000_000.0]
    site = Site(require_token=True, clock=lambda: now[0])
    cookie, token = await site.issue()
    now[0] += 2 * 3600
    assert (await site.post(cookie, x_csrftoken=token)).status == 200
    login = await site.post(cookie, path="/login", x_csrftoken=token)
    assert login.status == 200
    logged_in = login.header("set-cookie").split(";")[0]  # type: ignore[union-attr]
    assert (await site.post(logged_in, x_csrftoken=token)).status == 403
    renewed, fresh = await site.issue(logged_in)
    assert (await site.post(renewed, x_csrftoken=fresh)).status == 200


async def test_the_response_that_saves_the_token_secret_varies_on_cookie_trap_32() -> None:
    site = Site(require_token=True)
    recorded = await run_asgi(site.app, http_scope("GET", "/form", headers={"host": HOST}))
    assert recorded.header("set-cookie") is not None
    assert "Cookie" in (recorded.header("vary") or "")


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param(
            {"sec_fetch_site": "same-site", "origin": "https://evil.example.com"}, id="SFS"
        ),
        pytest.param({"sec_fetch_site": "", "origin": "https://evil.example.com"}, id="Origin"),
    ],
)
async def test_cookie_tossing_from_a_sibling_subdomain_is_refused_trap_33(
    headers: dict[str, str],
) -> None:
    site = Site(non_browser="token")
    cookie, _ = await site.issue()
    # A sibling origin planted a parent-domain cookie and sends the matching header.
    tossed = f"{cookie}; csrftoken=planted"
    recorded = await site.post(tossed, x_csrftoken="planted", **headers)
    assert recorded.status == 403


async def test_non_browser_token_policy_asks_clients_without_headers_for_a_token() -> None:
    site = Site(non_browser="token")
    cookie, token = await site.issue()
    no_headers = {"host": HOST, "cookie": cookie}
    without = await run_asgi(site.app, http_scope("POST", "/submit", headers=no_headers))
    assert without.status == 403
    with_token = {**no_headers, "x-csrftoken": token}
    recorded = await run_asgi(site.app, http_scope("POST", "/submit", headers=with_token))
    assert recorded.status == 200
    # Browsers are still judged by Fetch Metadata alone.
    assert (await site.post(cookie)).status == 200


async def test_websocket_handshake_token_from_a_header() -> None:
    site = Site(non_browser="token")
    cookie, token = await site.issue()
    scope = websocket_scope("/ws", headers={"host": HOST, "cookie": cookie, "x-csrftoken": token})
    recorded = await run_asgi(site.app, scope)
    assert recorded.messages[0]["type"] == "websocket.accept"
    refused = await run_asgi(site.app, websocket_scope("/ws", headers={"host": HOST}))
    assert refused.messages[0]["type"] == "websocket.close"


async def test_csrf_token_needs_the_middleware_and_a_session() -> None:
    with pytest.raises(RuntimeError, match="CSRFMiddleware"):
        csrf_token(http_scope())
    middleware = CSRFMiddleware(Site().endpoint, secret=CSRF_SECRET)
    with pytest.raises(RuntimeError, match="SessionMiddleware"):
        await run_asgi(middleware, http_scope("GET", "/form"))
