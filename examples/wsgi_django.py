"""Serve a Django project under ASGI through the WSGI bridge, next to Starlette endpoints.

Run it with ``uvicorn examples.wsgi_django:app``, then:

    curl http://127.0.0.1:8000/
    curl http://127.0.0.1:8000/django/items/

In a real project, set ``DJANGO_SETTINGS_MODULE`` and call ``get_wsgi_application()``; the tiny
settings below only keep the example in one file.
"""

from __future__ import annotations

import django
from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.urls import path
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Mount, Route

from middlewares.wsgi import WSGIMiddleware


def items(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"items": [], "script_name": request.META["SCRIPT_NAME"]})


urlpatterns = [path("items/", items)]

if not settings.configured:
    settings.configure(
        DEBUG=False,
        SECRET_KEY="example-only",
        ALLOWED_HOSTS=["*"],
        ROOT_URLCONF=__name__,
        MIDDLEWARE=[],
        INSTALLED_APPS=[],
    )
django.setup()

from django.core.wsgi import get_wsgi_application  # noqa: E402 (needs settings first)


async def home(request: Request) -> PlainTextResponse:
    return PlainTextResponse("Django is mounted at /django")


app = Starlette(
    routes=[
        Route("/", home),
        # close() is always called, so Django's request_finished releases DB connections.
        Mount("/django", WSGIMiddleware(get_wsgi_application())),
    ]
)
