"""TimingMiddleware's pure parts: metric syntax against the Server Timing grammar, the
``timing()`` / ``add_timing()`` API, route templates and origin exposure, and configuration."""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from middlewares.testing import http_scope, run_asgi
from middlewares.timing import (
    Metric,
    TimingMiddleware,
    add_timing,
    exposure,
    format_metric,
    quote_string,
    route_template,
    timing,
)

# RFC 9110 §5.6.2 token, §5.6.3 OWS, §5.6.4 quoted-string (qdtext and quoted-pair).
TCHAR = rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]"
TOKEN = TCHAR + rb"+"
OWS = rb"[ \t]*"
QUOTED = rb'"(?:[\t \x21\x23-\x5b\x5d-\x7e\x80-\xff]|\\[\t \x21-\x7e\x80-\xff])*"'
# Server Timing §3: server-timing-metric = metric-name *( OWS ";" OWS server-timing-param )
# server-timing-param = server-timing-param-name OWS "=" OWS server-timing-param-value
# server-timing-param-value = token / quoted-string; Server-Timing = #server-timing-metric
PARAM = TOKEN + OWS + rb"=" + OWS + rb"(?:" + TOKEN + rb"|" + QUOTED + rb")"
METRIC = TOKEN + rb"(?:" + OWS + rb";" + OWS + PARAM + rb")*"
SERVER_TIMING = re.compile(METRIC + rb"(?:" + OWS + rb"," + OWS + METRIC + rb")*")
PAIR = re.compile(rb"\\(.)", re.S)


def unquote(value: bytes) -> str:
    """The text a browser reads from a quoted-string (RFC 9110 §5.6.4)."""
    assert value[:1] == b'"'
    assert value[-1:] == b'"'
    return PAIR.sub(rb"\1", value[1:-1]).decode("utf-8")


def desc_of(header: bytes) -> bytes:
    return header.partition(b";desc=")[2]


@pytest.mark.parametrize(
    ("metric", "expected"),
    [
        pytest.param(Metric("app", 12.3), "app;dur=12.300", id="name and duration"),
        pytest.param(
            Metric("db", 4.1, "users query"), 'db;dur=4.100;desc="users query"', id="description"
        ),
        pytest.param(Metric("miss"), "miss", id="name alone"),
        pytest.param(Metric("cache", None, "hit"), 'cache;desc="hit"', id="description alone"),
        pytest.param(
            Metric("q", 0.0001, 'say "hi" \\ bye'),
            'q;dur=0.000;desc="say \\"hi\\" \\\\ bye"',
            id="quotes and backslashes escaped",
        ),
        pytest.param(
            Metric("q", 1, "line\r\nInjected: yes"),
            'q;dur=1.000;desc="line  Injected: yes"',
            id="CR LF cannot split the header",
        ),
    ],
)
def test_metric_serialisation(metric: Metric, expected: str) -> None:
    text = format_metric(metric)
    assert text == expected
    assert SERVER_TIMING.fullmatch(text.encode())


@given(st.text())
def test_any_description_gives_a_valid_header_that_reads_back(desc: str) -> None:
    value = format_metric(Metric("db", 1.5, desc)).encode("utf-8")
    assert SERVER_TIMING.fullmatch(value)
    visible = re.sub(r"[\x00-\x08\x0a-\x1f\x7f]", " ", desc)
    assert unquote(desc_of(value)) == visible


@given(st.lists(st.tuples(st.from_regex(TOKEN.decode(), fullmatch=True), st.text()), max_size=5))
def test_any_metric_list_matches_the_grammar(pairs: list[tuple[str, str]]) -> None:
    value = ", ".join(format_metric(Metric(name, 2.0, desc)) for name, desc in pairs)
    assert not value or SERVER_TIMING.fullmatch(value.encode("utf-8"))


def test_quote_string_keeps_tabs_and_non_ascii() -> None:
    assert quote_string("a\tb é") == '"a\tb é"'


@pytest.mark.parametrize(
    "name",
    [
        pytest.param("", id="empty"),
        pytest.param("db query", id="space"),
        pytest.param("db;x", id="semicolon"),
        pytest.param("dé", id="non-ASCII"),
        pytest.param('"db"', id="quoted"),
    ],
)
def test_metric_names_must_be_tokens(name: str) -> None:
    with pytest.raises(ValueError, match="must be an HTTP token"):
        add_timing(name, 1.0)
    with pytest.raises(ValueError, match="must be an HTTP token"):
        timing(name)
    with pytest.raises(ValueError, match="metric name must be an HTTP token"):
        TimingMiddleware(lambda *a: None, metric=name)  # type: ignore[arg-type, return-value]


@pytest.mark.parametrize(
    ("dur", "error"),
    [
        pytest.param(-1.0, ValueError, id="negative"),
        pytest.param(float("nan"), ValueError, id="NaN"),
        pytest.param(float("inf"), ValueError, id="infinite"),
        pytest.param("12", TypeError, id="string"),
        pytest.param(True, TypeError, id="bool"),
    ],
)
def test_durations_must_be_finite_milliseconds(dur: Any, error: type[Exception]) -> None:
    with pytest.raises(error, match="dur must be"):
        add_timing("db", dur)


def test_descriptions_must_be_text() -> None:
    with pytest.raises(TypeError, match="desc must be a string"):
        add_timing("db", 1.0, b"bytes")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="desc must be a string"):
        timing("db", desc=3)  # type: ignore[arg-type]


@pytest.mark.anyio
async def test_outside_a_request_metrics_are_checked_and_dropped() -> None:
    add_timing("db", 1.0, "ignored")
    with timing("db"):
        pass
    async with timing("db"):
        pass

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    result = await run_asgi(TimingMiddleware(app, clock=lambda: 0.0))
    assert result.header("server-timing") == "app;dur=0.000"  # nothing leaked in


class FakeRoute:
    def __init__(self, path_format: str, *, mount: bool = False) -> None:
        self.path_format = path_format
        if mount:
            self.routes: list[object] = []


@pytest.mark.parametrize(
    ("extra", "root_path", "expected"),
    [
        pytest.param({}, "", None, id="no router ran"),
        pytest.param({"route": object()}, "", None, id="route without a template"),
        pytest.param({"route": FakeRoute("/users/{id}")}, "", "/users/{id}", id="Starlette route"),
        pytest.param(
            {"route": FakeRoute("/users/{id}"), "root_path": "/api"},
            "",
            "/api/users/{id}",
            id="route inside a mount",
        ),
        pytest.param(
            {"route": FakeRoute("/users/{id}"), "root_path": "/v1/api"},
            "/v1",
            "/api/users/{id}",
            id="relative to the server's root path",
        ),
        pytest.param(
            {"route": FakeRoute("/static/{path:path}", mount=True), "root_path": "/static"},
            "",
            "/static/{path:path}",
            id="request ended in a mounted app",
        ),
        pytest.param({"route": FakeRoute("/"), "root_path": "/api/"}, "", "/api/", id="mount root"),
        pytest.param(
            {"route": FakeRoute("/x"), "root_path": "/other"},
            "/v1",
            "/other/x",
            id="root path rewritten by the app",
        ),
        pytest.param({"path_template": "/items/{id:int}"}, "", "/items/{id:int}", id="Litestar"),
    ],
)
def test_route_template(extra: dict[str, Any], root_path: str, expected: str | None) -> None:
    scope = {**http_scope("GET", "/whatever"), **extra}
    assert route_template(scope, root_path) == expected


SITE = b"https://app.example.com"


@pytest.mark.parametrize(
    ("headers", "scheme", "expected"),
    [
        pytest.param({"origin": "https://app.example.com"}, "https", (True, SITE), id="listed"),
        pytest.param(
            {"origin": "HTTPS://APP.example.com"},
            "https",
            (True, b"HTTPS://APP.example.com"),
            id="listed, any case",
        ),
        pytest.param({"origin": "https://evil.test"}, "https", (False, None), id="not listed"),
        pytest.param({"origin": "null"}, "https", (False, None), id="opaque origin"),
        pytest.param({"host": "app.example.com"}, "https", (True, None), id="own origin"),
        pytest.param({"host": "app.example.com:443"}, "https", (True, None), id="default port"),
        pytest.param({"host": "app.example.com"}, "http", (False, None), id="other scheme"),
        pytest.param({"host": "api.example.com"}, "https", (False, None), id="other host"),
        pytest.param({}, "https", (False, None), id="no Origin, no Host"),
        pytest.param(
            {"host": "APP.example.com."},
            "https",
            (True, None),
            id="Host read as the host check reads it",
        ),
        pytest.param({"host": "app.example.com\r\nx"}, "https", (False, None), id="CR/LF in Host"),
    ],
)
def test_exposure_for_an_origin_list(
    headers: dict[str, str], scheme: str, expected: tuple[bool, bytes | None]
) -> None:
    scope = http_scope(headers=headers, scheme=scheme)
    assert exposure(scope, frozenset({SITE, b"http://localhost:8000"})) == expected


@given(st.binary(max_size=60), st.binary(max_size=60), st.sampled_from(["http", "https"]))
def test_hostile_origin_and_host_headers_never_raise(
    origin: bytes, host: bytes, scheme: str
) -> None:
    origins = frozenset({SITE})
    by_origin = exposure(http_scope(headers=[(b"origin", origin)], scheme=scheme), origins)
    assert by_origin == ((True, origin) if origin.lower() == SITE else (False, None))
    by_host = exposure(http_scope(headers=[(b"host", host)], scheme=scheme), origins)
    own = scheme.encode() + b"://" + host.lower()
    assert by_host == (own in (SITE, SITE + b":443"), None)


async def noop_app(scope: Any, receive: Any, send: Any) -> None:
    return None


@pytest.mark.parametrize(
    ("options", "error", "match"),
    [
        pytest.param({"expose": "sometimes"}, ValueError, "expose must be", id="unknown word"),
        pytest.param(
            {"expose": ["https://a.test/path"]}, ValueError, "has a path", id="origin with a path"
        ),
        pytest.param(
            {"expose": ["https://*.a.test"]}, ValueError, "without wildcards", id="a wildcard"
        ),
        pytest.param({"expose": ["null"]}, ValueError, "or 'null'", id="the opaque origin"),
        pytest.param({"expose": ["a.test"]}, ValueError, "scheme://host", id="no scheme"),
        pytest.param({"expose": [3]}, TypeError, "must be strings", id="not a string"),
        pytest.param({"on_timing": [print, 3]}, TypeError, "on_timing", id="hook not callable"),
        pytest.param({"clock": 3}, TypeError, "clock must be", id="clock not callable"),
        pytest.param({"exclude_paths": ["health"]}, ValueError, "starting with '/'", id="bad path"),
    ],
)
def test_bad_configuration_names_the_argument(
    options: dict[str, Any], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        TimingMiddleware(noop_app, **options)
