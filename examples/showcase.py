"""The showcase: one page where each middleware can be seen working.

Run it with ``scripts/demo`` (or ``python -m examples.showcase``), then open
http://127.0.0.1:8000. The page calls an API served on a second port, 127.0.0.1:8001, so
that its requests are cross-origin. ``--port`` moves both (the API takes the next port).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Mount, Route

from middlewares import (
    BlockingDetector,
    CompressionMiddleware,
    CORSMiddleware,
    RequestIDMiddleware,
    SessionMiddleware,
    TimingMiddleware,
    get_request_id,
    run_in_process,
    timing,
)
from middlewares._core.codecs import make_codec

PORT = int(os.environ.get("SHOWCASE_PORT", "8000"))
SECRET = os.environ.get("SESSION_SECRET", "showcase only: set SESSION_SECRET in production")
CATALOGUE = [
    {"id": i, "name": f"Product {i}", "price": round(i * 1.37, 2), "tags": ["demo", "json"]}
    for i in range(1500)
]
CATALOGUE_BYTES = json.dumps(CATALOGUE).encode()


# --- the page's own server -------------------------------------------------------------------


async def home(request: Request) -> HTMLResponse:
    api = (
        request.app.state.api_url or f"http://{request.url.hostname}:{(request.url.port or 80) + 1}"
    )
    return HTMLResponse(PAGE.replace("__API__", api))


async def catalogue(request: Request) -> Response:
    with timing("db", desc="catalogue query"):
        await asyncio.sleep(0.015)  # stands in for a database round trip
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
            await asyncio.sleep(0.4)

    return StreamingResponse(stream(), media_type="text/event-stream")


def count_primes(limit: int) -> int:
    """CPU-bound work that would freeze the event loop if it ran there."""
    sieve = bytearray([1]) * (limit + 1)
    sieve[0:2] = b"\x00\x00"
    for n in range(2, int(limit**0.5) + 1):
        if sieve[n]:
            sieve[n * n :: n] = bytes(len(range(n * n, limit + 1, n)))
    return sum(1 for n in range(limit + 1) if sieve[n])  # deliberately slow pure-Python tail


async def cpu(request: Request) -> JSONResponse:
    limit = min(int(request.query_params.get("limit", "8000000")), 20_000_000)
    start = time.perf_counter()
    primes = await run_in_process(count_primes, limit)
    return JSONResponse(
        {"limit": limit, "primes": primes, "seconds": round(time.perf_counter() - start, 3)}
    )


async def ping(request: Request) -> JSONResponse:
    return JSONResponse({"request_id": get_request_id()})


def page_app(api_url: str | None = None) -> Starlette:
    """The page and its same-origin endpoints; the API is at ``api_url`` (default: next port)."""
    application = Starlette(
        routes=[
            Route("/", home),
            Route("/catalogue.json", catalogue),
            Route("/sizes", sizes),
            Route("/counter", counter, methods=["GET", "POST", "DELETE"]),
            Route("/events", events),
            Route("/cpu", cpu),
            Route("/ping", ping),
        ],
        middleware=[
            Middleware(RequestIDMiddleware),
            Middleware(TimingMiddleware),
            Middleware(CompressionMiddleware),
            Middleware(SessionMiddleware, secret_key=SECRET, same_site="lax"),
            Middleware(BlockingDetector, enabled=True, threshold=0.1),
        ],
    )
    application.state.api_url = api_url
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


def api_app(page_origins: list[str]) -> CORSMiddleware:
    """The cross-origin API, open to ``page_origins`` except under ``/strict``."""
    strict = Starlette(routes=[Route("/hello", hello)])
    open_api = Starlette(
        routes=[
            Route("/hello", hello, methods=["GET", "PUT"]),
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


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>middlewares showcase</title>
<style>
 body{font:15px/1.45 system-ui,sans-serif;max-width:62rem;margin:2rem auto;padding:0 1rem;color:#222}
 section{border:1px solid #ddd;border-radius:8px;padding:.8rem 1rem;margin:1rem 0}
 h2{font-size:1.05rem;margin:.2rem 0 .5rem} button{margin:.15rem .3rem .15rem 0}
 code,pre{background:#f5f5f5;border-radius:4px;padding:.1rem .3rem} pre{padding:.5rem;overflow:auto}
 .ok{color:#1a7f37} .no{color:#b42318} table{border-collapse:collapse} td,th{padding:.15rem .6rem}
</style></head><body>
<h1>middlewares showcase</h1>
<p>Clock: <b id="clock">-</b> &middot; server ping: <b id="ping">-</b> ms
 (both keep going while the CPU task below runs)</p>

<section id="cors"><h2>CORS: calls to __API__</h2>
<button id="cors-simple">simple GET</button><button id="cors-preflight">PUT with X-Demo (preflighted)</button>
<button id="cors-credentials">GET with cookies</button><button id="cors-refused">GET from a refused origin policy</button>
<pre id="cors-out">-</pre></section>

<section id="compression"><h2>Compression</h2>
<button id="compress">fetch the catalogue</button>
<p>Negotiated <b id="encoding">-</b>: <b id="transfer">-</b> bytes on the wire for
<b id="decoded">-</b> bytes of JSON. Sizes at the default levels: <span id="sizes">-</span></p>
<button id="events">open an event stream</button><pre id="events-out">-</pre></section>

<section id="session"><h2>Session</h2>
<button id="count">count</button><button id="reset">reset</button> count: <b id="counter">-</b>
<p>The cookie is HttpOnly, so this page cannot read it: <code id="cookies">-</code></p></section>

<section id="timing"><h2>Server-Timing</h2>
<p>Read from <code>PerformanceResourceTiming.serverTiming</code> after fetching the catalogue:</p>
<table id="timing-table"><tr><th>metric</th><th>ms</th><th>description</th></tr></table></section>

<section id="offload"><h2>Offload</h2>
<button id="cpu">count primes in a process pool</button><pre id="cpu-out">-</pre></section>

<script>
const API = "__API__";
const $ = (id) => document.getElementById(id);
setInterval(() => { $("clock").textContent = new Date().toLocaleTimeString() + "." +
  String(Date.now() % 1000).padStart(3, "0"); }, 50);
setInterval(async () => { const t = performance.now(); await fetch("/ping");
  $("ping").textContent = (performance.now() - t).toFixed(1); }, 250);

async function cors(label, url, init) {
  try {
    const r = await fetch(url, init);
    $("cors-out").textContent = label + ": " + r.status + " " + await r.text();
    $("cors-out").className = "ok";
  } catch (e) {
    $("cors-out").textContent = label + ": refused by the browser (" + e.message + ")";
    $("cors-out").className = "no";
  }
}
$("cors-simple").onclick = () => cors("simple", API + "/hello");
$("cors-preflight").onclick = () => cors("preflighted", API + "/hello",
  {method: "PUT", headers: {"X-Demo": "42"}});
$("cors-credentials").onclick = () => cors("credentialed", API + "/hello", {credentials: "include"});
$("cors-refused").onclick = () => cors("refused", API + "/strict/hello");

$("compress").onclick = async () => {
  const r = await fetch("/catalogue.json", {cache: "no-store"});
  const data = await r.json();
  $("encoding").textContent = r.headers.get("content-encoding") || "identity";
  await new Promise((resolve) => setTimeout(resolve, 50));
  const entries = performance.getEntriesByName(new URL("/catalogue.json", location).href);
  const entry = entries[entries.length - 1];
  $("transfer").textContent = entry.encodedBodySize;
  $("decoded").textContent = entry.decodedBodySize + " (" + data.length + " products)";
  const table = $("timing-table");
  table.querySelectorAll("tr.metric").forEach((row) => row.remove());
  for (const m of entry.serverTiming) {
    const row = table.insertRow(); row.className = "metric";
    row.insertCell().textContent = m.name; row.insertCell().textContent = m.duration.toFixed(2);
    row.insertCell().textContent = m.description;
  }
  const sizes = await (await fetch("/sizes")).json();
  $("sizes").textContent = Object.entries(sizes).map(([k, v]) => k + " " + v).join(", ");
};

$("events").onclick = () => {
  $("events-out").textContent = "";
  const source = new EventSource("/events");
  source.onmessage = (e) => {
    $("events-out").textContent += e.data + "\\n";
    if (e.lastEventId === "5") source.close();
  };
};

async function count(method) {
  const r = await fetch("/counter", {method});
  $("counter").textContent = (await r.json()).count;
  $("cookies").textContent = JSON.stringify(document.cookie);
}
$("count").onclick = () => count("POST");
$("reset").onclick = () => count("DELETE");
count("GET");

$("cpu").onclick = async () => {
  $("cpu-out").textContent = "running...";
  const r = await fetch("/cpu");
  $("cpu-out").textContent = JSON.stringify(await r.json());
};
</script></body></html>
"""


async def serve(host: str, port: int) -> None:
    import uvicorn

    servers = [
        uvicorn.Server(uvicorn.Config("examples.showcase:app", host=host, port=port)),
        uvicorn.Server(
            uvicorn.Config(
                api_app([f"http://{host}:{port}", f"http://localhost:{port}"]),
                host=host,
                port=port + 1,
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
