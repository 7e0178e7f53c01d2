"""Problem details for HTTP APIs (RFC 9457): the JSON body a guard answers with."""

from __future__ import annotations

import json
from collections.abc import Iterable

from .._types import Send
from .respond import send_response

PROBLEM_JSON = b"application/problem+json"


def problem_body(status: int, title: str, detail: str, **members: object) -> bytes:
    """Return an RFC 9457 ``application/problem+json`` body.

    ``type`` is ``about:blank`` (§4.2.1: the title is the status phrase); ``members`` are
    extension members (§3.2), such as the limit that fired.
    """
    problem = {"type": "about:blank", "title": title, "status": status, "detail": detail}
    problem.update(members)
    return json.dumps(problem, separators=(",", ":")).encode("utf-8")


async def send_problem(
    send: Send,
    status: int,
    title: str,
    detail: str,
    headers: Iterable[tuple[bytes, bytes]] = (),
    **members: object,
) -> None:
    """Send a complete ``application/problem+json`` response (see `problem_body`)."""
    body = problem_body(status, title, detail, **members)
    await send_response(send, status, headers, body, content_type=PROBLEM_JSON)
