"""An app behind a TLS-terminating reverse proxy: the real client, scheme, host and prefix,
only hosts it serves, and https everywhere but the health probe.

Run it behind nginx (``proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;``,
``X-Forwarded-Proto $scheme``, ``X-Forwarded-Host $host``, ``X-Forwarded-Prefix /shop``) with
``uvicorn examples.proxies:app --no-proxy-headers``, or try it by hand:

    curl -H 'X-Forwarded-Proto: https' -H 'X-Forwarded-For: 203.0.113.7' http://127.0.0.1:8000/
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

from middlewares import HTTPSRedirectMiddleware, ProxyHeadersMiddleware, TrustedHostMiddleware


async def home(request: Request) -> JSONResponse:
    # Everything here is the client's view, not the proxy's.
    return JSONResponse(
        {
            "client": request.client.host if request.client else None,
            "scheme": request.url.scheme,
            "url": str(request.url),
            "root_path": request.scope["root_path"],
            "login": str(request.url_for("login")),
        }
    )


async def login(request: Request) -> PlainTextResponse:
    return PlainTextResponse("log in")


async def healthz(request: Request) -> PlainTextResponse:
    return PlainTextResponse("ok")  # probed by IP over plain http: no host check, no redirect


shop = Starlette(
    routes=[Route("/", home), Route("/login", login), Route("/healthz", healthz)],
    middleware=[
        Middleware(
            TrustedHostMiddleware,
            allowed_hosts=["shop.example.com", "*.shop.example.com", "127.0.0.1", "localhost"],
            exclude_paths=["/healthz"],
        ),
        Middleware(HTTPSRedirectMiddleware, exclude_paths=["/healthz"]),
    ],
)

# Outermost, outside Starlette's error handling too, so error pages and logs see the client.
app = ProxyHeadersMiddleware(shop, trusted_hosts=["127.0.0.1", "10.0.0.0/8"], x_host=1, x_prefix=1)
