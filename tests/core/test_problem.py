from __future__ import annotations

import json

import pytest

from middlewares._core.problem import problem_body, send_problem
from middlewares._types import Receive, Scope, Send
from middlewares.testing import run_asgi

pytestmark = pytest.mark.anyio


def test_problem_body_is_rfc_9457_with_extension_members() -> None:
    body = problem_body(413, "Content Too Large", "Too big.", max_body_size=10)
    assert json.loads(body) == {
        "type": "about:blank",
        "title": "Content Too Large",
        "status": 413,
        "detail": "Too big.",
        "max_body_size": 10,
    }


async def test_send_problem_sets_the_problem_media_type_and_length() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send_problem(send, 504, "Gateway Timeout", "Late.", [(b"connection", b"close")])

    recorded = await run_asgi(app)
    assert recorded.status == 504
    assert recorded.header("content-type") == "application/problem+json"
    assert recorded.header("content-length") == str(len(recorded.body))
    assert recorded.header("connection") == "close"
    assert json.loads(recorded.body)["detail"] == "Late."
