"""FastAPI with per-route rate limits by route template, keyed by API key, answering refusals
as problem+json. ``/items/1`` and ``/items/2`` share the ``/items/{item_id}`` allowance.

Run it with ``uvicorn examples.rate_limit_fastapi:app``, then:

    for i in 1 2 3 4; do curl -s -H 'X-API-Key: k1' http://127.0.0.1:8000/search?q=$i; echo; done
    curl -si -H 'X-API-Key: k1' http://127.0.0.1:8000/items/7 | grep -i -e ratelimit -e retry
"""

from __future__ import annotations

from fastapi import FastAPI
from starlette.middleware import Middleware

from middlewares import RateLimit, RateLimitMiddleware
from middlewares.rate_limit import header_key

app = FastAPI(
    middleware=[
        Middleware(
            RateLimitMiddleware,
            application_limits=[RateLimit("1000/day", name="daily")],
            route_limits={
                "/search": RateLimit("3/minute", name="search"),
                "/items/{item_id}": RateLimit("30/minute", name="items"),
                "/export/*": RateLimit("2/hour", name="export"),
            },
            # Requests with an API key are counted per key; without one, per client address.
            key_func=header_key("X-API-Key"),
            error_format="problem+json",
        )
    ]
)


@app.get("/")
async def home() -> dict[str, str]:
    return {"docs": "/docs"}


@app.get("/search")
async def search(q: str = "") -> dict[str, list[str]]:
    return {"results": [q] if q else []}


@app.get("/items/{item_id}")
async def item(item_id: int) -> dict[str, int]:
    return {"id": item_id}


@app.get("/export/{kind}")
async def export(kind: str) -> dict[str, str]:
    return {"export": kind}
