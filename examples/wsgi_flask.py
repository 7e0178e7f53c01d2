"""Serve a Flask app under ASGI next to new Starlette endpoints, during a migration.

Run it with ``uvicorn examples.wsgi_flask:app``, then:

    curl http://127.0.0.1:8000/                  # Starlette
    curl http://127.0.0.1:8000/legacy/hello      # Flask, on a thread of the bridge's pool
    curl -F name=Ada http://127.0.0.1:8000/legacy/greet
"""

from __future__ import annotations

from flask import Flask, request, url_for
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Mount, Route

from middlewares.wsgi import WSGIMiddleware

legacy = Flask(__name__)


@legacy.get("/hello")
def hello() -> dict[str, str]:
    # Mounted at /legacy: Flask sees it as SCRIPT_NAME, so url_for builds /legacy/... links.
    return {"message": "hello from Flask", "self": url_for("hello")}


@legacy.post("/greet")
def greet() -> str:
    return f"Hello, {request.form.get('name', 'stranger')}!"


async def home(request: Request) -> PlainTextResponse:
    return PlainTextResponse("new endpoints are served by Starlette; /legacy/* by Flask")


app = Starlette(
    routes=[
        Route("/", home),
        # 10 threads for Flask; a slow upload is read on the event loop before it takes one.
        Mount("/legacy", WSGIMiddleware(legacy, workers=10)),
    ]
)
