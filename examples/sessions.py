"""A shop with sessions: a cart anyone can fill, a login that rotates the session id, a logout
that really ends it. Sessions live in Redis when ``REDIS_URL`` is set, else in memory.

Run it with ``uvicorn examples.sessions:app --lifespan on`` (or ``SESSION_SECRETS=...
REDIS_URL=redis://127.0.0.1:6379/0 uvicorn examples.sessions:app --lifespan on --workers 4``),
then:

    curl -c jar -b jar -X POST http://127.0.0.1:8000/cart/apple
    curl -c jar -b jar -X POST http://127.0.0.1:8000/login/ada
    curl -c jar -b jar http://127.0.0.1:8000/
"""

from __future__ import annotations

import os
import secrets

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from middlewares.sessions import SessionMiddleware, get_session
from middlewares.stores import MemoryStore, RedisStore

REDIS_URL = os.environ.get("REDIS_URL")
# Keys newest first: add a new key in front, drop the old one after max_age (14 days).
# In production set SESSION_SECRETS, made with: python -c "import secrets; print(secrets.token_urlsafe(32))"
# Without it each process makes a random key: sessions end at restart, differ per worker.
SECRET_KEYS = os.environ.get("SESSION_SECRETS", secrets.token_urlsafe(32)).split(",")


async def home(request: Request) -> JSONResponse:
    session = get_session(request)  # typed: request.session is a plain dict to mypy
    return JSONResponse({"user": session.get("user"), "cart": session.get("cart", [])})


async def add_to_cart(request: Request) -> JSONResponse:
    # A nested change: detected without any "modified" flag.
    request.session.setdefault("cart", []).append(request.path_params["item"])
    return JSONResponse(request.session["cart"])


async def login(request: Request) -> JSONResponse:
    session = get_session(request)
    session.regenerate()  # a new id on privilege change; the old one is deleted
    session["user"] = request.path_params["name"]
    return JSONResponse({"user": session["user"]})


async def logout(request: Request) -> JSONResponse:
    request.session.clear()  # deletes the stored session and expires the cookie
    return JSONResponse({"user": None})


app = Starlette(
    routes=[
        Route("/", home),
        Route("/cart/{item}", add_to_cart, methods=["POST"]),
        Route("/login/{name}", login, methods=["POST"]),
        Route("/logout", logout, methods=["POST"]),
    ],
    middleware=[
        Middleware(
            SessionMiddleware,
            secret_key=SECRET_KEYS,
            store=RedisStore(REDIS_URL) if REDIS_URL else MemoryStore(),
            idle_timeout=2 * 3600,  # signed out after two quiet hours...
            rolling=300,  # ...with activity renewing the session at most every 5 minutes
            absolute_timeout=7 * 24 * 3600,  # and after a week whatever the activity
        )
    ],
)
