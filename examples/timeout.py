"""Bounded response times: a 504 when a handler has not answered in 5 s, a longer budget for
reports, event streams left alone, and the seconds left handed to a slow client call.

Run it with ``uvicorn examples.timeout:app``, then:

    curl http://127.0.0.1:8000/search?q=slow     # 504 after 5 s, as problem JSON
    curl http://127.0.0.1:8000/reports/7         # up to 60 s
    curl -N http://127.0.0.1:8000/events         # streams for as long as it likes
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import anyio
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, StreamingResponse
from starlette.routing import Route

from middlewares.timeout import TimeoutMiddleware, remaining


async def home(request: Request) -> PlainTextResponse:
    return PlainTextResponse("try /search?q=slow, /reports/7 and /events")


async def search(request: Request) -> JSONResponse:
    # Give the backend only the time the request has left (a database or HTTP client takes
    # it as its own timeout), so it gives up when the client would have.
    budget = remaining()
    await anyio.sleep(10 if request.query_params.get("q") == "slow" else 0)
    return JSONResponse({"results": [], "budget_seconds": budget})


async def report(request: Request) -> JSONResponse:
    await anyio.sleep(1)
    return JSONResponse({"report": request.path_params["id"]})


async def events(request: Request) -> StreamingResponse:
    async def ticks() -> AsyncIterator[str]:
        for tick in range(1000):
            yield f"data: {tick}\n\n"
            await anyio.sleep(1)

    return StreamingResponse(ticks(), media_type="text/event-stream")


app = Starlette(
    routes=[
        Route("/", home),
        Route("/search", search),
        Route("/reports/{id}", report),
        Route("/events", events),
    ],
    middleware=[
        Middleware(
            TimeoutMiddleware,
            timeout=5,  # until the response starts: 504 after that
            idle_timeout=30,  # once streaming, at most 30 s between chunks
            path_timeouts={"/reports/{id}": 60},
        )
    ],
)
