"""CORS: a simple request from an allowed origin, and a preflight, beside Starlette's."""

from __future__ import annotations

from starlette.middleware.cors import CORSMiddleware as StarletteCORS

from middlewares._types import ASGIApp, Message
from middlewares.cors import CORSMiddleware
from middlewares.testing import http_scope

from .harness import Case, PassThrough, respond_with

ORIGIN = "https://app.example.com"
CONFIG = {
    "allow_origins": [ORIGIN, "https://admin.example.com"],
    "allow_methods": ["GET", "POST", "PUT"],
    "allow_headers": ["x-request-id", "authorization"],
    "allow_credentials": True,
    "expose_headers": ["x-total-count"],
}


def _check_allowed(label: str, messages: list[Message]) -> None:
    start = messages[0]
    if label == "pass-through (floor)":
        return
    headers = dict(start["headers"])
    if headers.get(b"access-control-allow-origin") != ORIGIN.encode():
        raise AssertionError(f"{label} did not allow the origin: {start}")


def _check_preflight(label: str, messages: list[Message]) -> None:
    start = messages[0]
    if label == "pass-through (floor)":
        return
    headers = dict(start["headers"])
    if start["status"] != 200 or headers.get(b"access-control-allow-origin") != ORIGIN.encode():
        raise AssertionError(f"{label} refused the preflight: {start}")


def cases() -> list[Case]:
    app = respond_with(b"ok", [(b"content-type", b"text/plain")])
    simple = http_scope(
        "GET", "/items", headers={"host": "api.example.com", "origin": ORIGIN, "accept": "*/*"}
    )
    preflight = http_scope(
        "OPTIONS",
        "/items",
        headers={
            "host": "api.example.com",
            "origin": ORIGIN,
            "access-control-request-method": "PUT",
            "access-control-request-headers": "content-type, x-request-id",
        },
    )
    variants: dict[str, ASGIApp] = {
        "middlewares": CORSMiddleware(app, **CONFIG),  # type: ignore[arg-type]
        "pass-through (floor)": PassThrough(app),
        "starlette": StarletteCORS(app, **CONFIG),  # type: ignore[arg-type]
    }
    return [
        Case(
            "cors",
            "simple request, allowed origin",
            variants,
            scope=simple,
            baseline="starlette",
            check=_check_allowed,
        ),
        Case(
            "cors",
            "preflight",
            variants,
            scope=preflight,
            baseline="starlette",
            check=_check_preflight,
        ),
    ]
