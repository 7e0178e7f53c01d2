from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from middlewares._core.paths import PathMatcher, PathTable, route_path, route_template
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


TEMPLATES = PathMatcher(["/items/{id}", "/files/{rest:path}", "/users/{id:int}/avatar"])


@pytest.mark.parametrize(
    ("path", "matched"),
    [
        pytest.param("/items/1", True, id="template segment"),
        pytest.param("/items/2", True, id="any value of the segment"),
        pytest.param("/items/", False, id="empty segment"),
        pytest.param("/items/1/x", False, id="segment is one segment"),
        pytest.param("/files/a/b.txt", True, id="path parameter spans slashes"),
        pytest.param("/users/7/avatar", True, id="convertor"),
        pytest.param("/users/7/avatarX", False, id="template is full-matched"),
    ],
)
def test_route_templates(path: str, matched: bool) -> None:
    assert TEMPLATES.matches(http_scope(path=path)) is matched


@pytest.mark.parametrize("pattern", ["/items/{id", "/items/id}", "/x/{a b}", "/{a}/*"])
def test_malformed_templates_are_refused(pattern: str) -> None:
    with pytest.raises(ValueError, match="path pattern"):
        PathMatcher([pattern])


def test_a_string_is_not_a_list_of_patterns() -> None:
    with pytest.raises(TypeError, match="list of patterns"):
        PathMatcher("/health")  # type: ignore[arg-type]


def test_trailing_slash_pattern_is_exact() -> None:
    webhooks = PathMatcher(["/webhooks/"])
    assert [webhooks.matches_path(p) for p in ("/webhooks/", "/webhooks", "/webhooksX")] == [
        True,
        False,
        False,
    ]


TABLE = PathTable(
    {"/login": "strict", "/api/*": "api", "/items/{id}": "items", re.compile(r"/r\d"): "regex"}
)


@pytest.mark.parametrize(
    ("path", "value"),
    [
        pytest.param("/login", "strict", id="exact"),
        pytest.param("/api", "api", id="prefix stem"),
        pytest.param("/api/v1/x", "api", id="below prefix"),
        pytest.param("/items/9", "items", id="template"),
        pytest.param("/r1", "regex", id="regex"),
        pytest.param("/elsewhere", "default", id="no match gives the default"),
    ],
)
def test_path_table_lookup(path: str, value: str) -> None:
    assert TABLE.lookup(http_scope(path=path), "default") == value


def test_path_table_first_match_wins_across_kinds() -> None:
    table = PathTable([("/a/*", 1), ("/a/b", 2)])
    assert table.lookup_path("/a/b") == 1
    assert PathTable([("/a/b", 2), ("/a/*", 1)]).lookup_path("/a/b") == 2
    assert not PathTable({})
    assert PathTable({"/x": 0})


@pytest.mark.parametrize(
    ("scope", "template"),
    [
        pytest.param(
            {"route": type("Route", (), {"path": "/items/{id}"})()},
            "/items/{id}",
            id="starlette route object",
        ),
        pytest.param(
            {"path_template": "/u/{uid:int}"}, "/u/{uid:int}", id="litestar path_template"
        ),
        pytest.param({"route": "/plain"}, "/plain", id="a string route"),
        pytest.param({"route": object()}, None, id="route without a path"),
        pytest.param({}, None, id="not routed"),
    ],
)
def test_route_template(scope: dict[str, object], template: str | None) -> None:
    assert route_template(scope) == template
