"""Server-Timing for a Starlette app: the browser's devtools (Network, Timing tab) show how long
the app took to answer and how long its database and template steps took.

Run it with ``uvicorn examples.timing:app``, then open http://127.0.0.1:8000/users/7 and look
at the response's ``Server-Timing`` header:

    Server-Timing: app;dur=12.512, db;dur=10.214;desc="users query", render;dur=0.031
"""

from __future__ import annotations

import anyio
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse
from starlette.routing import Route

from middlewares.timing import TimingMiddleware, add_timing, timing


async def load_user(user_id: int) -> dict[str, object]:
    # Any code the request runs can add a metric: no access to the request is needed.
    async with timing("db", desc="users query"):
        await anyio.sleep(0.01)  # stands in for a database call
    return {"id": user_id, "name": f"user {user_id}"}


async def home(request: Request) -> PlainTextResponse:
    return PlainTextResponse("try /users/7 and look at the Server-Timing header")


async def user(request: Request) -> HTMLResponse:
    found = await load_user(request.path_params["user_id"])
    add_timing("cache", desc="miss")  # a metric without a duration
    with timing("render"):
        page = f"<!doctype html><title>{found['name']}</title><h1>{found['name']}</h1>"
    return HTMLResponse(page)


app = Starlette(
    routes=[Route("/", home), Route("/users/{user_id:int}", user)],
    middleware=[
        # Internal timings are for your own pages: list the origins allowed to see them.
        Middleware(TimingMiddleware, expose=["http://127.0.0.1:8000", "http://localhost:8000"])
    ],
)
