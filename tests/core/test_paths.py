from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from middlewares._core.paths import PathMatcher, route_path
from middlewares.testing import http_scope

MATCHER = PathMatcher(["/health", "/static/*", re.compile(r"/users/\d+/avatar")])


@pytest.mark.parametrize(
    ("path", "root_path", "matched"),
    [
        pytest.param("/health", "", True, id="exact"),
        pytest.param("/health/", "", False, id="exact is exact"),
        pytest.param("/HEALTH", "", False, id="case-sensitive"),
        pytest.param("/static", "", True, id="prefix stem"),
        pytest.param("/static/app.js", "", True, id="below prefix"),
        pytest.param("/staticfiles", "", False, id="not a segment boundary"),
        pytest.param("/users/12/avatar", "", True, id="regex"),
        pytest.param("/users/12/avatar/x", "", False, id="regex is full-matched"),
        pytest.param("/health", "/api", True, id="under a root path"),
        pytest.param("/other", "/api", False, id="other path under root"),
    ],
)
def test_matching(path: str, root_path: str, matched: bool) -> None:
    assert MATCHER.matches(http_scope(path=path, root_path=root_path)) is matched


def test_root_path_is_stripped_only_at_a_segment_boundary() -> None:
    assert route_path({"path": "/apiary", "root_path": "/api"}) == "/apiary"
    assert route_path({"path": "/api", "root_path": "/api"}) == "/"
    assert route_path({"path": "/api/x", "root_path": "/api"}) == "/x"
    assert route_path({"path": "/x"}) == "/x"


def test_root_prefix_matches_everything() -> None:
    assert PathMatcher(["/*"]).matches(http_scope(path="/anything"))


def test_empty_matcher_is_falsy() -> None:
    assert not PathMatcher()
    assert PathMatcher(["/x"])
    assert PathMatcher([re.compile("x")])


@pytest.mark.parametrize("pattern", ["health", "/a*", "/a/*/b/*", 3])
def test_bad_patterns_are_refused(pattern: object) -> None:
    with pytest.raises(ValueError, match="path pattern"):
        PathMatcher([pattern])  # type: ignore[list-item]


@given(st.text(max_size=30), st.text(max_size=10))
def test_any_path_is_matched_without_error(path: str, root: str) -> None:
    MATCHER.matches({"path": path, "root_path": root})
