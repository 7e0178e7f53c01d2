"""Keep the event loop free: offload a blocking endpoint, call sync and CPU-bound code through
bounded named pools, and report any handler that still blocks the loop.

Run it with ``MIDDLEWARES_DETECT_BLOCKING=1 uvicorn examples.offload:app``, then:

    curl http://127.0.0.1:8000/reports/7    # blocks 0.5 s on a worker, never the loop
    curl http://127.0.0.1:8000/users/1      # a sync driver call on the "db" pool
    curl http://127.0.0.1:8000/digest       # CPU work in a process
    curl http://127.0.0.1:8000/oops         # blocks the loop: logged with its stack
"""

from __future__ import annotations

import hashlib
import time

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

from middlewares.blocking import BlockingDetector
from middlewares.offload import OffloadMiddleware, run_in_process, run_in_thread, thread_pool

# At most 5 concurrent database calls, 50 waiting; beyond that run_in_thread raises PoolFullError.
thread_pool("db", max_workers=5, max_queue=50)


def fetch_user(user_id: int) -> dict[str, object]:
    time.sleep(0.05)  # stands in for a sync database driver
    return {"id": user_id, "name": "Ada"}


def digest(data: bytes, rounds: int) -> str:
    for _ in range(rounds):
        data = hashlib.sha256(data).digest()
    return data.hex()


async def home(request: Request) -> PlainTextResponse:
    return PlainTextResponse("ok")


async def report(request: Request) -> PlainTextResponse:
    time.sleep(0.5)  # noqa: ASYNC251 - a legacy call; this path runs on an offload worker
    return PlainTextResponse(f"report {request.path_params['id']}")


async def user(request: Request) -> JSONResponse:
    return JSONResponse(await run_in_thread(fetch_user, int(request.path_params["id"]), pool="db"))


async def cpu(request: Request) -> PlainTextResponse:
    return PlainTextResponse(await run_in_process(digest, b"seed", 200_000))


async def oops(request: Request) -> PlainTextResponse:
    time.sleep(0.3)  # noqa: ASYNC251 - the mistake BlockingDetector reports
    return PlainTextResponse("that blocked every other request for 0.3 s")


app = Starlette(
    routes=[
        Route("/", home),
        Route("/reports/{id:int}", report),
        Route("/users/{id:int}", user),
        Route("/digest", cpu),
        Route("/oops", oops),
    ],
    middleware=[
        # Outermost, so it sees every request; on only with MIDDLEWARES_DETECT_BLOCKING=1.
        Middleware(BlockingDetector, threshold=0.1),
        Middleware(
            OffloadMiddleware,
            pool="reports",
            paths=["/reports/*"],
            max_workers=4,
            max_queue=8,
            timeout=30,
        ),
    ],
)
