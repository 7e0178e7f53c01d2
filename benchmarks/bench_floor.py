"""The floor: the bare app, and the cheapest pure-ASGI middleware wrapped around it."""

from __future__ import annotations

from .harness import Case, PassThrough, respond_with


def cases() -> list[Case]:
    app = respond_with(b"ok", [(b"content-type", b"text/plain")])
    return [
        Case(
            "floor",
            "GET, 2-byte response",
            {"pass-through middleware": PassThrough(app), "bare app": app},
            baseline="bare app",
        )
    ]
