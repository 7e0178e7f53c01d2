"""How a request ended, as the middlewares that ended it report it to the ones outside them.

A guard that answers for the app (a rate limit, a body limit, a timeout) or sees the request end
badly writes one word under ``scope["middlewares.outcome"]``; the access log, the timing hooks
and the OpenTelemetry span read it. The first word written wins: the innermost layer knows best
why its request ended.
"""

from __future__ import annotations

from typing import Literal

from .._types import Scope

#: The scope key holding the outcome.
OUTCOME_KEY = "middlewares.outcome"

#: ``ok``: a complete response; ``error``: the app raised; ``disconnect``: the client left first;
#: ``timeout``, ``limited``, ``too_large``, ``forbidden``: a guard answered instead of the app.
Outcome = Literal["ok", "error", "disconnect", "timeout", "limited", "too_large", "forbidden"]


def set_outcome(scope: Scope, outcome: Outcome) -> None:
    """Record why the request ended, unless an inner layer already did."""
    scope.setdefault(OUTCOME_KEY, outcome)


def get_outcome(scope: Scope) -> Outcome | None:
    """Return the recorded outcome, or None when no layer recorded one."""
    return scope.get(OUTCOME_KEY)
