"""The full stack around Django's ASGI handler, in the order of the ordering page
(docs/ordering.md), configured inline so the file runs alone.
Django's own session framework is not involved: views read ``request.scope["session"]``.

Run it with ``uvicorn examples.stack_django:app --lifespan on --no-proxy-headers``.
"""

from __future__ import annotations

import os
import secrets

import django
from django.conf import settings

if not settings.configured:
    settings.configure(
        DEBUG=False,
        SECRET_KEY=os.environ.get("DJANGO_SECRET", "change-me: a long random string"),
        ROOT_URLCONF=__name__,
        ALLOWED_HOSTS=["127.0.0.1", "localhost", "testserver"],
        MIDDLEWARE=[],
        INSTALLED_APPS=[],
    )
    django.setup()

from django.core.asgi import get_asgi_application
from django.http import HttpRequest, JsonResponse
from django.urls import path

from middlewares import (
    CompressionMiddleware,
    CORSMiddleware,
    Layer,
    ProxyHeadersMiddleware,
    RequestIDMiddleware,
    SecurityHeadersMiddleware,
    SessionMiddleware,
    TimingMiddleware,
    compose,
    get_request_id,
    timing,
)
from middlewares.security_headers import JSON_API_PRESET

# In production set SESSION_SECRET, made with: python -c "import secrets; print(secrets.token_urlsafe(32))"
# Without it each process makes a random key: sessions end at restart, differ per worker.
SECRET = os.environ.get("SESSION_SECRET") or secrets.token_urlsafe(32)
# The addresses of the reverse proxies in front: their X-Forwarded-* headers are believed.
PROXIES = os.environ.get("TRUSTED_PROXIES", "127.0.0.1").split(",")


async def home(request: HttpRequest) -> JsonResponse:
    session = request.scope["session"]  # type: ignore[attr-defined]
    with timing("work", desc="counting"):
        session["visits"] = session.get("visits", 0) + 1
    return JsonResponse(
        {"visits": session["visits"], "request_id": get_request_id(), "items": list(range(200))}
    )


urlpatterns = [path("", home)]

app = compose(
    get_asgi_application(),
    Layer(ProxyHeadersMiddleware, trusted_hosts=PROXIES),
    Layer(RequestIDMiddleware),
    Layer(TimingMiddleware),
    Layer(SecurityHeadersMiddleware, **JSON_API_PRESET),
    Layer(CORSMiddleware, allow_origins=["https://app.example.com"], allow_credentials=True),
    Layer(CompressionMiddleware),
    Layer(SessionMiddleware, secret_key=SECRET, https_only="auto"),
)
