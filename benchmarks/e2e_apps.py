"""Apps served by ``benchmarks/e2e.py``: the same endpoints bare, behind this library's stack,
and behind the equivalent stack built from the peers."""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable

from middlewares._types import ASGIApp, Message, Receive, Scope, Send

from .harness import PassThrough

SMALL = b"hello, world"
JSON_4K = json.dumps(
    [{"id": i, "name": f"item {i}", "tags": ["a", "b"], "price": i * 1.5} for i in range(64)]
).encode()[:4096]


async def bare(scope: Scope, receive: Receive, send: Send) -> None:
    """``/json`` answers 4 KiB of JSON; every other path a 12-byte text."""
    if scope["type"] != "http":
        return
    json_body = scope["path"] == "/json"
    body = JSON_4K if json_body else SMALL
    content_type = b"application/json" if json_body else b"text/plain"
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", content_type),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


pass_through: ASGIApp = PassThrough(bare)


class _NoStatsd:
    """timing-asgi reports to a statsd-style client; this one drops the numbers."""

    def timing(self, metric_name: str, timing: float, tags: list[str]) -> None:
        return None


async def _reads_session(scope: Scope, receive: Receive, send: Send) -> None:
    """The bare endpoints, after reading the session as a logged-in page would."""
    if scope["type"] == "http":
        scope["session"].get("user")
    await bare(scope, receive, send)


def _ours() -> ASGIApp:
    from middlewares import CORSMiddleware, Layer, SessionMiddleware, TimingMiddleware, compose
    from middlewares.compression import CompressionMiddleware

    return compose(
        _reads_session,
        Layer(TimingMiddleware),
        Layer(CORSMiddleware, allow_origins=["https://app.example.com"]),
        Layer(CompressionMiddleware, gzip_level=6),
        Layer(SessionMiddleware, secret_key="benchmark-secret-of-at-least-32-bytes"),
    )


def _peers() -> ASGIApp:
    from starlette.middleware.cors import CORSMiddleware
    from starlette.middleware.sessions import SessionMiddleware
    from starlette_compress import CompressMiddleware
    from timing_asgi import TimingMiddleware

    app: ASGIApp = SessionMiddleware(
        _reads_session, secret_key="benchmark-secret-of-at-least-32-bytes"
    )
    app = CompressMiddleware(app, gzip_level=6)
    app = CORSMiddleware(app, allow_origins=["https://app.example.com"])
    return TimingMiddleware(app, client=_NoStatsd())  # type: ignore[no-any-return]


class _OneLayer:
    """A measuring stick, not a middleware: one hand-written layer doing only what ``GET /``
    needs from the four jobs (look up Origin and the session cookie, put a session dict in the
    scope, check the response's size, append ``Vary`` and ``Server-Timing``). Four separate
    layers cannot cost less than this; it gives the ceiling for any stack of them."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        origin = cookie = None
        for key, value in scope["headers"]:
            if key == b"origin":
                origin = value
            elif key == b"cookie":
                cookie = value
        # No request here has a cookie or an Origin: nothing to verify, nothing to grant.
        scope["session"] = {} if cookie is None else {"unverified": cookie}
        grants = [] if origin is None else [(b"access-control-allow-origin", origin)]

        def send_with_headers(message: Message) -> Awaitable[None]:
            if message["type"] == "http.response.start":
                headers = [*message["headers"], *grants]
                for key, value in headers:
                    if key == b"content-length" and int(value) < 500:
                        break
                elapsed = (time.perf_counter() - started) * 1000
                headers.append((b"vary", b"Cookie, Origin"))
                headers.append((b"server-timing", b"app;dur=%.3f" % elapsed))
                message = {**message, "headers": headers}
            return send(message)

        await self.app(scope, receive, send_with_headers)


#: CORS + compression + sessions + timing from this library, outermost first.
ours_stack = _ours()
#: The ceiling for any four-layer stack: their minimum work for ``GET /`` fused into one layer.
one_layer = _OneLayer(_reads_session)
#: The same stack from Starlette 1.10 (CORS, sessions), starlette-compress and timing-asgi.
peers_stack = _peers()


#: The production edge, outermost first: proxy headers, trusted host, security headers,
#: request id, timing, CORS, compression, sessions, CSRF, body limit. Served with
#: ``--no-proxy-headers`` so uvicorn's own proxy layer is not counted twice.
EDGE_HOSTS = ["api.example.com", "*.example.com"]


def _edge_ours() -> ASGIApp:
    from middlewares import (
        BodyLimitMiddleware,
        CompressionMiddleware,
        CORSMiddleware,
        CSRFMiddleware,
        Layer,
        ProxyHeadersMiddleware,
        RequestIDMiddleware,
        SecurityHeadersMiddleware,
        SessionMiddleware,
        TimingMiddleware,
        TrustedHostMiddleware,
        compose,
    )

    return compose(
        _reads_session,
        Layer(ProxyHeadersMiddleware, trusted_hosts="127.0.0.1"),
        Layer(TrustedHostMiddleware, allowed_hosts=EDGE_HOSTS),
        Layer(SecurityHeadersMiddleware),
        Layer(RequestIDMiddleware),
        Layer(TimingMiddleware),
        Layer(CORSMiddleware, allow_origins=["https://app.example.com"]),
        Layer(CompressionMiddleware, gzip_level=6),
        Layer(SessionMiddleware, secret_key="benchmark-secret-key-of-32-bytes!"),
        Layer(CSRFMiddleware),
        Layer(BodyLimitMiddleware, max_body_size=1_000_000),
    )


def _edge_peers() -> ASGIApp:
    from asgi_correlation_id import CorrelationIdMiddleware
    from secure.middleware.asgi import SecureASGIMiddleware
    from starlette.middleware.body_limit import RequestBodyLimitMiddleware
    from starlette.middleware.cors import CORSMiddleware
    from starlette.middleware.sessions import SessionMiddleware
    from starlette.middleware.trustedhost import TrustedHostMiddleware
    from starlette_compress import CompressMiddleware
    from starlette_csrf import CSRFMiddleware
    from timing_asgi import TimingMiddleware
    from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

    app: ASGIApp = RequestBodyLimitMiddleware(_reads_session, max_body_size=1_000_000)
    app = CSRFMiddleware(app, secret="benchmark-secret-key-of-32-bytes!")
    app = SessionMiddleware(app, secret_key="benchmark-secret-key-of-32-bytes!")
    app = CompressMiddleware(app, gzip_level=6)
    app = CORSMiddleware(app, allow_origins=["https://app.example.com"])
    app = TimingMiddleware(app, client=_NoStatsd())
    app = CorrelationIdMiddleware(app)
    app = SecureASGIMiddleware(app)
    app = TrustedHostMiddleware(app, allowed_hosts=EDGE_HOSTS)
    return ProxyHeadersMiddleware(app, trusted_hosts="127.0.0.1")


def __getattr__(name: str) -> ASGIApp:
    # Built on first use, so a run of other apps needs none of the edge layers' imports.
    if name == "edge_ours":
        return _edge_ours()
    if name == "edge_peers":
        return _edge_peers()
    raise AttributeError(name)
