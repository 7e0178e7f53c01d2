"""The showcase: one page where each middleware can be seen working.

Run it with ``scripts/demo`` (or ``python -m examples.showcase``), then open
http://127.0.0.1:8000. The page calls an API served on a second port, 127.0.0.1:8001, so
that its requests are cross-origin. ``--port`` moves both (the API takes the next port).
The page itself is ``examples/showcase.html``.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import logging
import math
import os
import pathlib
import secrets
import sys
import time
import urllib.parse
from collections.abc import AsyncIterator

import anyio
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Mount, Route

from middlewares import (
    NONCE,
    AccessLogMiddleware,
    BlockingDetector,
    BodyLimitMiddleware,
    CompressionMiddleware,
    CORSMiddleware,
    CSRFMiddleware,
    ProxyHeadersMiddleware,
    RateLimit,
    RateLimitMiddleware,
    RequestIDMiddleware,
    SecurityHeadersMiddleware,
    SessionMiddleware,
    TimeoutMiddleware,
    Timeouts,
    TimingMiddleware,
    get_request_id,
    remaining,
    run_in_process,
    timing,
)
from middlewares._core.codecs import make_codec
from middlewares.access_log import AccessRecord, format_json
from middlewares.security_headers import DEFAULT_CSP

PORT = int(os.environ.get("SHOWCASE_PORT", "8000"))
# Without SESSION_SECRET each process draws its own key: sessions end when it restarts.
SECRET = os.environ.get("SESSION_SECRET") or secrets.token_urlsafe(32)
PAGE = (pathlib.Path(__file__).parent / "showcase.html").read_text(encoding="utf-8")
CATALOGUE = [
    {"id": i, "name": f"Product {i}", "price": round(i * 1.37, 2), "tags": ["demo", "json"]}
    for i in range(1500)
]
CATALOGUE_BYTES = json.dumps(CATALOGUE).encode()
UPLOAD_LIMIT = 1024 * 1024

# serve() prints the page's access log on stdout; the page shows its last lines too.
access_logger = logging.getLogger("showcase.access")
access_logger.setLevel(logging.INFO)


# --- the page's own server -------------------------------------------------------------------


async def home(request: Request) -> HTMLResponse:
    api = (
        request.app.state.api_url or f"http://{request.url.hostname}:{(request.url.port or 80) + 1}"
    )
    # The API address comes from the Host header: written as a JSON string, never as markup.
    page = PAGE.replace("__API__", json.dumps(api).replace("<", "\\u003c"))
    return HTMLResponse(page.replace("__NONCE__", request.state.csp_nonce))


async def catalogue(request: Request) -> Response:
    with timing("db", desc="catalogue query"):
        await anyio.sleep(0.015)  # stands in for a database round trip
    with timing("render"):
        body = CATALOGUE_BYTES
    return Response(body, media_type="application/json")


async def sizes(request: Request) -> JSONResponse:
    """What each coding makes of the catalogue at this library's default levels."""
    levels = {"gzip": 6, "br": 4, "zstd": 3}
    result = {"identity": len(CATALOGUE_BYTES)}
    for coding, level in levels.items():
        result[coding] = len(make_codec(coding, level, argument=coding).compress(CATALOGUE_BYTES))
    return JSONResponse(result)


async def counter(request: Request) -> JSONResponse:
    if request.method == "DELETE":
        request.session.clear()
    elif request.method == "POST":
        request.session["count"] = request.session.get("count", 0) + 1
    return JSONResponse({"count": request.session.get("count", 0)})


async def events(request: Request) -> StreamingResponse:
    async def stream() -> AsyncIterator[bytes]:
        for n in range(1, 6):
            yield f"id: {n}\ndata: event {n} of 5 at {time.strftime('%H:%M:%S')}\n\n".encode()
            await anyio.sleep(0.4)

    return StreamingResponse(stream(), media_type="text/event-stream")


def count_primes(limit: int) -> int:
    """CPU-bound work that would freeze the event loop if it ran there."""
    sieve = bytearray([1]) * (limit + 1)
    sieve[0:2] = b"\x00\x00"
    for n in range(2, int(limit**0.5) + 1):
        if sieve[n]:
            sieve[n * n :: n] = bytes(len(range(n * n, limit + 1, n)))
    return sum(1 for n in range(limit + 1) if sieve[n])  # deliberately slow pure-Python tail


def query_number(request: Request, name: str, default: float, maximum: float) -> float:
    """A number from the query string, between 0 and ``maximum``; ``default`` if malformed."""
    try:
        value = float(request.query_params.get(name, default))
    except ValueError:
        return default
    return min(max(value, 0.0), maximum) if math.isfinite(value) else default


async def cpu(request: Request) -> JSONResponse:
    limit = int(query_number(request, "limit", 8_000_000, 20_000_000))
    start = time.perf_counter()
    primes = await run_in_process(count_primes, limit)
    return JSONResponse(
        {"limit": limit, "primes": primes, "seconds": round(time.perf_counter() - start, 3)}
    )


async def ping(request: Request) -> JSONResponse:
    return JSONResponse({"request_id": get_request_id()})


async def whoami(request: Request) -> JSONResponse:
    """What the app believes about the request: the client, scheme and host it builds URLs from."""
    return JSONResponse(
        {
            "client": request.client.host if request.client else None,
            "scheme": request.url.scheme,
            "host": request.headers.get("host"),
            "url": str(request.url),
            "root_path": request.scope.get("root_path", ""),
        }
    )


async def limited(request: Request) -> JSONResponse:
    return JSONResponse({"ok": True})


async def access_log(request: Request) -> JSONResponse:
    return JSONResponse(list(reversed(request.app.state.recent_access)))


async def upload(request: Request) -> JSONResponse:
    request.app.state.uploads_handled += 1
    received = 0
    async for chunk in request.stream():
        received += len(chunk)
    return JSONResponse({"received": received})


async def uploads_handled(request: Request) -> JSONResponse:
    return JSONResponse({"handled": request.app.state.uploads_handled})


async def slow(request: Request) -> JSONResponse:
    left = remaining()
    await anyio.sleep(query_number(request, "seconds", 3.0, 10.0))
    return JSONResponse({"remaining_at_start": None if left is None else round(left, 2)})


async def stalled(request: Request) -> StreamingResponse:
    async def stream() -> AsyncIterator[bytes]:
        yield b'{"chunk": 1}\n'
        await anyio.sleep(10)  # the idle timeout cuts the response long before this ends
        yield b'{"chunk": 2}\n'

    # A streaming media type: compression forwards each line at once instead of holding the
    # start of the response until minimum_size bytes arrived (which the idle budget would wait
    # for too, since nothing has been sent yet).
    return StreamingResponse(stream(), media_type="application/x-ndjson")


async def transfer(request: Request) -> Response:
    # Parsed by hand: Starlette's request.form() needs python-multipart, not in the demo extra.
    amount = urllib.parse.parse_qs((await request.body()).decode("latin-1")).get("amount", ["0"])
    return Response(f"transferred {amount[0]}", media_type="text/plain")


def edge_app() -> Starlette:
    """``/whoami`` three times: bare, behind a trusted proxy, and behind an untrusted one."""
    who = Starlette(routes=[Route("/whoami", whoami)])
    forwarded = {"x_host": 1, "x_prefix": 1}
    return Starlette(
        routes=[
            Mount("/direct", app=who),
            # Only 127.0.0.1 may forward, and the browser connects from there: trusted. Here
            # the middleware wraps one mount; in production it is the outermost layer.
            Mount(
                "/trusted", app=ProxyHeadersMiddleware(who, trusted_hosts="127.0.0.1", **forwarded)
            ),
            # The same headers from a peer outside the trusted range are ignored.
            Mount(
                "/untrusted",
                app=ProxyHeadersMiddleware(who, trusted_hosts="10.0.0.0/8", **forwarded),
            ),
        ]
    )


def page_app(api_url: str | None = None) -> Starlette:
    """The page and its same-origin endpoints; the API is at ``api_url`` (default: next port)."""
    # Local origins the page may call and frame: its API, and the other name of this machine
    # that the CSRF panel uses as "another site".
    local = ["http://127.0.0.1:*", "http://localhost:*"]
    recent_access: collections.deque[AccessRecord] = collections.deque(maxlen=20)

    def keep_recent(record: AccessRecord) -> str:
        recent_access.append(record)
        return format_json(record)

    application = Starlette(
        routes=[
            Route("/", home),
            Route("/catalogue.json", catalogue),
            Route("/sizes", sizes),
            Route("/counter", counter, methods=["GET", "POST", "DELETE"]),
            Route("/events", events),
            Route("/cpu", cpu),
            Route("/ping", ping),
            Mount("/edge", app=edge_app()),
            Route("/limited", limited),
            Route("/access-log", access_log),
            Route("/guards/upload", upload, methods=["POST"]),
            Route("/guards/uploads", uploads_handled),
            Route("/guards/slow", slow),
            Route("/guards/stalled", stalled),
            Route("/csrf/transfer", transfer, methods=["POST"]),
        ],
        # The canonical order (docs/ordering.md), outermost first, with the layers used here.
        # ProxyHeadersMiddleware, first in that order, wraps only /edge/trusted: outermost it
        # would rewrite what every panel sees, and the page is served without a proxy.
        middleware=[
            Middleware(
                AccessLogMiddleware,
                format=keep_recent,
                logger=access_logger,
                exclude_paths=["/ping", "/access-log"],
            ),
            Middleware(RequestIDMiddleware),
            Middleware(TimingMiddleware),
            Middleware(
                SecurityHeadersMiddleware,
                content_security_policy={
                    **DEFAULT_CSP,
                    "script-src": ["'self'", NONCE],
                    "connect-src": ["'self'", *local],
                    "frame-src": ["'self'", *local],
                    "upgrade-insecure-requests": None,  # the demo is served over http
                },
            ),
            Middleware(
                RateLimitMiddleware,
                route_limits={"/limited": RateLimit("5/30 seconds", name="demo")},
            ),
            Middleware(
                TimeoutMiddleware,
                path_timeouts={"/guards/slow": 1, "/guards/stalled": Timeouts(idle=1)},
            ),
            Middleware(CompressionMiddleware),
            Middleware(BodyLimitMiddleware, path_limits={"/guards/upload": UPLOAD_LIMIT}),
            Middleware(SessionMiddleware, secret_key=SECRET, same_site="lax"),
            Middleware(CSRFMiddleware),
            Middleware(BlockingDetector, enabled=True, threshold=0.1),
        ],
    )
    application.state.api_url = api_url
    application.state.uploads_handled = 0
    application.state.recent_access = recent_access
    return application


app = page_app()

# --- the cross-origin API on the next port ---------------------------------------------------


async def hello(request: Request) -> JSONResponse:
    return JSONResponse(
        {
            "method": request.method,
            "origin": request.headers.get("origin"),
            "x_demo": request.headers.get("x-demo"),
            "cookie_sent": "demo" in request.cookies,
        },
        headers={"set-cookie": "demo=1; Path=/; SameSite=Lax; HttpOnly"},
    )


CROSS_SITE_FORM = """<!doctype html><meta charset="utf-8"><title>another site</title>
<form method="post" action="{action}"><input name="amount" value="1000"></form>
<script>document.forms[0].submit();</script>"""


def api_app(page_origins: list[str]) -> CORSMiddleware:
    """The cross-origin API, open to ``page_origins`` except under ``/strict``."""

    async def cross_site_form(request: Request) -> HTMLResponse:
        # Another site's page that posts to the showcase as soon as it loads: a forged request.
        target = request.query_params.get("target")
        if target not in page_origins:
            return HTMLResponse("unknown target", status_code=400)
        return HTMLResponse(CROSS_SITE_FORM.format(action=f"{target}/csrf/transfer"))

    strict = Starlette(routes=[Route("/hello", hello)])
    open_api = Starlette(
        routes=[
            Route("/hello", hello, methods=["GET", "PUT"]),
            Route("/csrf-form", cross_site_form),
            # A policy that does not list the page's origin: the browser must refuse the read.
            Mount(
                "/strict",
                app=CORSMiddleware(strict, allow_origins=["https://elsewhere.example"]),
            ),
        ]
    )
    return CORSMiddleware(
        open_api,
        allow_origins=page_origins,
        allow_methods=["GET", "PUT"],
        allow_headers=["x-demo"],
        allow_credentials=True,
        expose_headers=["x-request-id"],
        exclude_paths=["/strict/*"],
    )


async def serve(host: str, port: int) -> None:
    import uvicorn

    access_logger.addHandler(logging.StreamHandler(sys.stdout))
    access_logger.propagate = False
    # The page logs its own requests (uvicorn's line would repeat them), and the proxy panel
    # shows what ProxyHeadersMiddleware does: uvicorn's own proxy-header handling stays off.
    options = {"host": host, "access_log": False, "proxy_headers": False}
    servers = [
        uvicorn.Server(uvicorn.Config("examples.showcase:app", port=port, **options)),
        uvicorn.Server(
            uvicorn.Config(
                api_app([f"http://{host}:{port}", f"http://localhost:{port}"]),
                port=port + 1,
                **options,
            )
        ),
    ]
    print(f"showcase on http://{host}:{port} (API on port {port + 1})")
    await asyncio.gather(*(server.serve() for server in servers))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=PORT)
    arguments = parser.parse_args()
    asyncio.run(serve(arguments.host, arguments.port))
