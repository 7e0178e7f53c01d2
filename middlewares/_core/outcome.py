"""How a request ended, as the middlewares that ended it report it to the ones outside them.

A guard that answers for the app (a rate limit, a body limit, a timeout) or sees the request end
badly writes one word under ``scope["middlewares.outcome"]``; the access log, the timing hooks
and the OpenTelemetry span read it. The first word written wins: the innermost layer knows best
why its request ended.
"""

from __future__ import annotations

from typing import Literal

from .._types import Message, Scope

#: The scope key holding the outcome.
OUTCOME_KEY = "middlewares.outcome"

#: ``ok``: a complete response; ``error``: the app raised; ``disconnect``: the client left first;
#: ``timeout``, ``limited``, ``too_large``, ``forbidden``: a guard answered instead of the app.
Outcome = Literal["ok", "error", "disconnect", "timeout", "limited", "too_large", "forbidden"]


def request_outcome(
    status: int | None,
    *,
    complete: bool,
    error: BaseException | None,
    disconnected: bool,
    recorded: Outcome | None = None,
) -> tuple[int, Outcome]:
    """Decide the status and outcome reported for a finished request.

    A complete response keeps its status, and is an ``error`` when the app raised after it
    (a background task); a client that left first (``disconnected``: before the response was
    complete, even if the app answered later) is 499 ``disconnect``; an app that raised or
    returned before completing its response is ``error``, with the status it sent or 500. An
    outcome ``recorded`` in the scope by an inner layer (``limited``, ``timeout``) wins.
    """
    cancelled = error is not None and not isinstance(error, Exception)
    if disconnected or (cancelled and not complete):
        return 499, recorded or "disconnect"
    if complete:
        detected: Outcome = "error" if error is not None and not cancelled else "ok"
    else:
        detected = "error"
    return (500 if status is None else status), recorded or detected


def ends_response(message: Message, trailers: bool = False) -> bool:
    """Whether sending ``message`` completes the response, ``trailers`` being what the
    ``http.response.start`` announced.

    ASGI HTTP spec: the last ``http.response.body`` (no ``more_body``), or the ``Path Send``
    extension's ``http.response.pathsend``, or the ``Zero Copy Send`` extension's last
    ``http.response.zerocopysend``; with the ``HTTP Trailers`` extension's ``trailers: True``
    those only end the body, and the last ``http.response.trailers`` (no ``more_trailers``)
    ends the response. WebSocket spec: ``websocket.close``, or the last
    ``websocket.http.response.body`` of a denial response.
    """
    kind = message["type"]
    if kind == "http.response.body" or kind == "http.response.zerocopysend":
        return not trailers and not message.get("more_body", False)
    if kind == "http.response.trailers":
        return not message.get("more_trailers", False)
    if kind == "http.response.pathsend":
        return not trailers
    if kind == "websocket.close":
        return True
    return kind == "websocket.http.response.body" and not message.get("more_body", False)


def set_outcome(scope: Scope, outcome: Outcome) -> None:
    """Record why the request ended, unless an inner layer already did."""
    scope.setdefault(OUTCOME_KEY, outcome)


def get_outcome(scope: Scope) -> Outcome | None:
    """Return the recorded outcome, or None when no layer recorded one."""
    return scope.get(OUTCOME_KEY)
