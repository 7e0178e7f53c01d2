"""The edge: proxy headers on a 3-hop chain beside uvicorn's, trusted host beside Starlette's,
and the HTTPS redirect's cost on a request that is already https beside the pass-through floor."""

from __future__ import annotations

from collections.abc import Callable

from starlette.middleware.httpsredirect import HTTPSRedirectMiddleware as StarletteHTTPSRedirect
from starlette.middleware.trustedhost import TrustedHostMiddleware as StarletteTrustedHost
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware as UvicornProxyHeaders

from middlewares._types import ASGIApp, Message, Receive, Scope, Send
from middlewares.https_redirect import HTTPSRedirectMiddleware
from middlewares.proxy_headers import ProxyHeadersMiddleware
from middlewares.testing import http_scope
from middlewares.trusted_host import TrustedHostMiddleware

from .harness import Case, PassThrough, respond_with

FLOOR = "pass-through (floor)"
CLIENT = b"203.0.113.7"


async def echo_client(scope: Scope, receive: Receive, send: Send) -> None:
    body = f"{scope['scheme']} {scope['client'][0]}".encode()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})


def _expect(status: int, body: bytes | None = None) -> Callable[[str, list[Message]], None]:
    def check(label: str, messages: list[Message]) -> None:
        if messages[0]["status"] != status:
            raise AssertionError(f"{label} answered {messages[0]}")
        if body is not None and label != FLOOR and messages[1]["body"] != body:
            raise AssertionError(f"{label} passed {messages[1]['body']!r}, not {body!r}")

    return check


def cases() -> list[Case]:
    trusted = ["10.0.0.0/8"]
    chain = http_scope(
        headers={
            "host": "app.example.com",
            "x-forwarded-for": "198.51.100.9, 203.0.113.7, 10.0.0.1, 10.0.0.2",
            "x-forwarded-proto": "https",
        },
        client=("10.0.0.3", 40000),
    )
    proxies: dict[str, ASGIApp] = {
        "middlewares": ProxyHeadersMiddleware(echo_client, trusted_hosts=trusted),
        FLOOR: PassThrough(echo_client),
        "uvicorn": UvicornProxyHeaders(echo_client, trusted_hosts=trusted),  # type: ignore[arg-type]
    }
    app = respond_with(b"ok", [(b"content-type", b"text/plain")])
    allowed = ["example.com", "*.example.com"]
    hosts: dict[str, ASGIApp] = {
        "middlewares": TrustedHostMiddleware(app, allowed_hosts=allowed),
        FLOOR: PassThrough(app),
        "starlette": StarletteTrustedHost(app, allowed_hosts=allowed),
    }
    redirects: dict[str, ASGIApp] = {
        "middlewares": HTTPSRedirectMiddleware(app),
        "starlette": StarletteHTTPSRedirect(app),
        FLOOR: PassThrough(app),
    }
    host = {"host": "api.example.com", "accept": "*/*"}
    return [
        Case(
            "edge",
            "proxy headers, 3 trusted hops",
            proxies,
            scope=chain,
            baseline="uvicorn",
            check=_expect(200, b"https " + CLIENT),
        ),
        Case(
            "edge",
            "trusted host, allowed subdomain",
            hosts,
            scope=http_scope(headers=host),
            baseline="starlette",
            check=_expect(200),
        ),
        Case(
            "edge",
            "trusted host, refused host",
            {k: v for k, v in hosts.items() if k != FLOOR},
            scope=http_scope(headers={"host": "evil.example"}),
            baseline="starlette",
            check=_expect(400),
        ),
        Case(
            "edge",
            "https redirect, https request",
            redirects,
            scope=http_scope(headers=host, scheme="https"),
            baseline=FLOOR,
            check=_expect(200),
        ),
        Case(
            "edge",
            "https redirect, http request (307)",
            {k: v for k, v in redirects.items() if k != FLOOR},
            scope=http_scope(headers=host),
            baseline="starlette",
            check=_expect(307),
        ),
    ]
