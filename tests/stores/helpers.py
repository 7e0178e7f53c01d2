"""Shared pieces of the session tests: a fake clock, tiny apps and cookie plumbing."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from middlewares._types import ASGIApp, Receive, Scope, Send
from middlewares.sessions import Session
from middlewares.testing import Recorded, http_scope, run_asgi

START = 1_700_000_000


class Clock:
    """A wall clock that only moves when told to."""

    def __init__(self, now: float = START) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def app_doing(action: Callable[[Session], Any] | None = None) -> ASGIApp:
    """An app that runs ``action`` on the session and answers with its result as JSON."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        result = None if action is None else action(scope["session"])
        body = json.dumps(result).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": body})

    return app


def set_cookies(recorded: Recorded) -> list[str]:
    return recorded.header_all("set-cookie")


def cookie_pair(recorded: Recorded) -> str:
    """The ``name=value`` part of the one Set-Cookie the response carries."""
    (header,) = set_cookies(recorded)
    return header.split(";", 1)[0]


async def call(app: ASGIApp, cookie: str | None = None, path: str = "/") -> Recorded:
    headers = {} if cookie is None else {"cookie": cookie}
    return await run_asgi(app, http_scope(path=path, headers=headers))


def result(recorded: Recorded) -> Any:
    assert recorded.status == 200
    return json.loads(recorded.body)
