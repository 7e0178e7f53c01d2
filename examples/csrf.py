"""A form safe from cross-site request forgery: Fetch Metadata for browsers, and a session-bound
token for clients that send no browser headers.

Run it with ``uvicorn examples.csrf:app`` and open http://127.0.0.1:8000 to send the form. Then
``curl -X POST http://127.0.0.1:8000/transfer`` is refused (no browser headers and no token),
and so is the same form posted from a page on another site (``Sec-Fetch-Site: cross-site``).
"""

from __future__ import annotations

import html
import os
import secrets
from urllib.parse import parse_qs

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse
from starlette.routing import Route

from middlewares.csrf import CSRFMiddleware, csrf_token, rotate_csrf_token
from middlewares.sessions import SessionMiddleware

# The same secrets on every worker, so that sessions and tokens survive restarts. Make each with
# python -c "import secrets; print(secrets.token_urlsafe(32))"; unset, a key per process is drawn.
SESSION_SECRET = os.environ.get("SESSION_SECRET") or secrets.token_urlsafe(32)
CSRF_SECRET = os.environ.get("CSRF_SECRET") or secrets.token_urlsafe(32)

PAGE = """<!doctype html><title>Transfer</title>
<p>Signed in as {user}.</p>
<form method="post" action="/transfer">
  <input type="hidden" name="csrftoken" value="{token}">
  <input name="amount" value="10"> <button>Send</button>
</form>
<form method="post" action="/login"><button>Sign in as ada</button></form>"""


async def home(request: Request) -> HTMLResponse:
    token = csrf_token(request.scope)  # put it in forms for clients without Fetch Metadata
    user = html.escape(request.session.get("user", "nobody"))
    return HTMLResponse(PAGE.format(user=user, token=html.escape(token)))


async def transfer(request: Request) -> PlainTextResponse:
    # The middleware read the token from the form, and the body is still here, untouched.
    form = parse_qs((await request.body()).decode())
    return PlainTextResponse(f"sent {form.get('amount', ['0'])[0]}")


async def login(request: Request) -> RedirectResponse:
    request.session["user"] = "ada"
    rotate_csrf_token(request.scope)  # tokens from before the login stop working
    return RedirectResponse("/", status_code=303)


async def payment_webhook(request: Request) -> PlainTextResponse:
    return PlainTextResponse("received")  # signed by the payment provider, not by a browser


app = Starlette(
    routes=[
        Route("/", home),
        Route("/transfer", transfer, methods=["POST"]),
        Route("/login", login, methods=["POST"]),
        Route("/webhooks/payments", payment_webhook, methods=["POST"]),
    ],
    middleware=[
        Middleware(SessionMiddleware, secret_key=SESSION_SECRET),  # outside: loads the session
        Middleware(
            CSRFMiddleware,
            secret=CSRF_SECRET,
            non_browser="token",
            exclude_paths=["/webhooks/payments"],
        ),
    ],
)
