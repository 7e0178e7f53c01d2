"""End to end: requests/s of a Starlette app whose sessions live in Redis, served by uvicorn
and loaded by wrk, for SessionMiddleware + RedisStore and starsessions + its RedisStore.

    python benchmarks/e2e_sessions_redis.py            # 5 s per row, 32 connections
    python benchmarks/e2e_sessions_redis.py --duration 10 --connections 64

It starts a throw-away redis-server and one uvicorn worker per variant on 127.0.0.1, logs in
once to get a session cookie, then runs wrk with that cookie on a read-only route (the session
is read, nothing is written) and on a route that changes the session on every request.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import sys

if __package__ in (None, ""):
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from benchmarks.serve import uvicorn_process, wrk
from tests.servers import redis_server

VARIANTS = ("middlewares", "starsessions")


async def login(request: Request) -> PlainTextResponse:
    request.session["user_id"] = 42
    request.session["n"] = 0
    return PlainTextResponse("in")


async def read(request: Request) -> PlainTextResponse:
    return PlainTextResponse(str(request.session.get("user_id")))


async def count(request: Request) -> PlainTextResponse:
    request.session["n"] = request.session.get("n", 0) + 1
    return PlainTextResponse(str(request.session["n"]))


def make_app() -> object:
    """The app uvicorn serves (``--factory``); the variant and Redis URL come from the env."""
    url = os.environ["BENCH_REDIS_URL"]
    inner = Starlette(
        routes=[
            Route("/login", login, methods=["POST"]),
            Route("/", read),
            Route("/count", count, methods=["POST"]),
        ]
    )
    if os.environ["BENCH_VARIANT"] == "middlewares":
        from middlewares.sessions import SessionMiddleware
        from middlewares.stores import RedisStore

        return SessionMiddleware(
            inner, secret_key="benchmark-secret-of-at-least-32-bytes", store=RedisStore(url)
        )
    from starsessions import SessionAutoloadMiddleware
    from starsessions import SessionMiddleware as StarSessions
    from starsessions.stores.redis import RedisStore as StarRedisStore

    return StarSessions(
        SessionAutoloadMiddleware(inner),
        store=StarRedisStore(url=url),
        cookie_https_only=False,
        lifetime=3600,
    )


def run(variant: str, redis_url: str, duration: int, connections: int) -> dict[str, float]:
    import httpx

    env = {"BENCH_VARIANT": variant, "BENCH_REDIS_URL": redis_url}
    target = "benchmarks.e2e_sessions_redis:make_app"
    with uvicorn_process(target, "--factory", env=env) as (base, _):
        name, value = next(iter(httpx.post(f"{base}/login").cookies.items()))
        cookie = [f"Cookie: {name}={value}"]

        def load(path: str, method: str) -> float:
            return wrk(
                base + path,
                method=method,
                headers=cookie,
                seconds=duration,
                connections=connections,
                threads=2,
            )

        return {"read only": load("/", "GET"), "modified": load("/count", "POST")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--duration", type=int, default=5)
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args()
    with redis_server() as (url, _):
        results = {v: run(v, url, args.duration, args.connections) for v in VARIANTS}
    print(f"uvicorn (1 worker) + wrk -t2 -c{args.connections} -d{args.duration}s, real Redis")
    print()
    print("| case | variant | requests/s |")
    print("|---|---|---:|")
    for case in ("read only", "modified"):
        for variant in VARIANTS:
            print(f"| {case} | {variant} | {results[variant][case]:,.0f} |")


if __name__ == "__main__":
    main()
