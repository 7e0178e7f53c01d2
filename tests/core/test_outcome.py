from __future__ import annotations

import pytest

from middlewares._core.outcome import OUTCOME_KEY, ends_response, get_outcome, set_outcome
from middlewares._types import Message


def test_the_innermost_outcome_wins() -> None:
    scope: dict[str, object] = {}
    assert get_outcome(scope) is None
    set_outcome(scope, "limited")
    set_outcome(scope, "error")
    assert get_outcome(scope) == "limited"
    assert scope[OUTCOME_KEY] == "limited"


@pytest.mark.parametrize(
    ("message", "trailers", "ends"),
    [
        pytest.param({"type": "http.response.body", "body": b"x"}, False, True, id="last body"),
        pytest.param(
            {"type": "http.response.body", "more_body": True}, False, False, id="more body"
        ),
        pytest.param({"type": "http.response.body"}, True, False, id="last body before trailers"),
        pytest.param({"type": "http.response.pathsend", "path": "/f"}, False, True, id="pathsend"),
        pytest.param(
            {"type": "http.response.pathsend", "path": "/f"}, True, False, id="pathsend, trailers"
        ),
        pytest.param(
            {"type": "http.response.zerocopysend", "file": 3}, False, True, id="last zerocopysend"
        ),
        pytest.param(
            {"type": "http.response.zerocopysend", "file": 3, "more_body": True},
            False,
            False,
            id="more zerocopysend",
        ),
        pytest.param({"type": "http.response.trailers"}, True, True, id="last trailers"),
        pytest.param(
            {"type": "http.response.trailers", "more_trailers": True},
            True,
            False,
            id="more trailers",
        ),
        pytest.param({"type": "websocket.close"}, False, True, id="websocket close"),
        pytest.param({"type": "websocket.http.response.body"}, False, True, id="last denial body"),
        pytest.param(
            {"type": "websocket.http.response.body", "more_body": True},
            False,
            False,
            id="more denial body",
        ),
        pytest.param({"type": "http.response.start"}, False, False, id="the start"),
        pytest.param({"type": "websocket.send"}, False, False, id="a websocket message"),
    ],
)
def test_which_message_ends_a_response(message: Message, trailers: bool, ends: bool) -> None:
    assert ends_response(message, trailers) is ends
