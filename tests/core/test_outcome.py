from __future__ import annotations

from middlewares._core.outcome import OUTCOME_KEY, get_outcome, set_outcome


def test_the_innermost_outcome_wins() -> None:
    scope: dict[str, object] = {}
    assert get_outcome(scope) is None
    set_outcome(scope, "limited")
    set_outcome(scope, "error")
    assert get_outcome(scope) == "limited"
    assert scope[OUTCOME_KEY] == "limited"
