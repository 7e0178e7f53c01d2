"""Security headers: Helmet's full header set on a small response, with and without a CSP
nonce, beside ``secure``'s ASGI middleware with the same set (its ``Preset.BASIC``)."""

from __future__ import annotations

from secure import Preset, Secure
from secure.middleware import SecureASGIMiddleware

from middlewares._types import ASGIApp, Message
from middlewares.security_headers import HTML_PRESET, SecurityHeadersMiddleware
from middlewares.testing import http_scope

from .harness import Case, PassThrough, respond_with


def _check(label: str, messages: list[Message]) -> None:
    if label == "pass-through (floor)":
        return
    headers = dict(messages[0]["headers"])
    for name in (b"content-security-policy", b"strict-transport-security", b"x-frame-options"):
        if name not in {k.lower() for k in headers}:
            raise AssertionError(f"{label} did not send {name!r}: {messages[0]}")
    if "nonce" in label and b"'nonce-" not in headers[b"content-security-policy"]:
        raise AssertionError(f"{label} sent no nonce")


def cases() -> list[Case]:
    app = respond_with(b'{"ok":true}', [(b"content-type", b"application/json")])
    scope = http_scope(
        "GET", "/items", scheme="https", headers={"host": "shop.example.com", "accept": "*/*"}
    )
    variants: dict[str, ASGIApp] = {
        "middlewares": SecurityHeadersMiddleware(app),
        "middlewares, with a nonce": SecurityHeadersMiddleware(app, **HTML_PRESET),
        "pass-through (floor)": PassThrough(app),
        "secure": SecureASGIMiddleware(app, secure=Secure.from_preset(Preset.BASIC)),  # type: ignore[dict-item]
    }
    return [
        Case(
            "security",
            "Helmet's header set, small response",
            variants,
            scope=scope,
            baseline="secure",
            check=_check,
        )
    ]
