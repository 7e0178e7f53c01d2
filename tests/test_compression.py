"""CompressionMiddleware and GZipMiddleware: negotiation (RFC 9110 §12.5.3), what is left
untouched, header rewriting, configuration errors, and the traps of the compression reference."""

from __future__ import annotations

import asyncio
import gzip
import random
import re

import brotli
import pytest
from backports import zstd
from hypothesis import given
from hypothesis import strategies as st

from middlewares._types import ASGIApp, Receive, Scope, Send
from middlewares.compression import (
    DEFAULT_EXCLUDED_CONTENT_TYPES,
    CompressionMiddleware,
    GZipMiddleware,
    negotiate,
    response_plan,
)
from middlewares.testing import Recorded, http_scope, run_asgi

pytestmark = pytest.mark.anyio

BODY = b"".join(b'{"id": %d, "name": "user %d"},' % (i, i) for i in range(400))
PREFERENCE = (b"zstd", b"br", b"gzip")


def respond(
    body: bytes = BODY,
    *headers: tuple[bytes, bytes],
    status: int = 200,
    content_length: bool = True,
) -> ASGIApp:
    raw = [(b"content-type", b"application/json"), *headers]
    if content_length:
        raw.append((b"content-length", str(len(body)).encode()))

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": status, "headers": raw})
        await send({"type": "http.response.body", "body": b"" if status == 304 else body})

    return app


def decode(recorded: Recorded) -> bytes:
    coding = recorded.header("content-encoding")
    if coding == "gzip":
        return gzip.decompress(recorded.body)
    if coding == "br":
        return bytes(brotli.decompress(recorded.body))
    if coding == "zstd":
        return bytes(zstd.decompress(recorded.body))
    assert coding is None
    return recorded.body


async def get(app: ASGIApp, accept: str | None = "gzip, deflate, br, zstd", **kw: str) -> Recorded:
    headers = {} if accept is None else {"accept-encoding": accept}
    return await run_asgi(
        app, http_scope(kw.get("method", "GET"), kw.get("path", "/"), headers=headers)
    )


# -- negotiation ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "chosen"),
    [
        pytest.param((), None, id="no Accept-Encoding: identity"),
        pytest.param((b"",), None, id="empty Accept-Encoding: identity"),
        pytest.param((b"gzip, deflate, br, zstd",), b"zstd", id="Chromium: server prefers zstd"),
        pytest.param((b"gzip, deflate, br",), b"br", id="Firefox without zstd: br"),
        pytest.param((b"gzip;q=0",), None, id="gzip;q=0 means never"),
        pytest.param((b"gzip;q=0, br;q=0",), None, id="nothing acceptable: identity"),
        pytest.param((b"GZIP",), b"gzip", id="codings are case-insensitive"),
        pytest.param((b"gzip;Q=0",), None, id="the q parameter is case-insensitive"),
        pytest.param((b"br;q=0, gzip",), b"gzip", id="br refused, gzip accepted"),
        pytest.param((b"gzip;q=1, br;q=0.5",), b"gzip", id="a higher q beats server order"),
        pytest.param((b"gzip;q=0.5, zstd;q=0.5",), b"zstd", id="a tie goes to server order"),
        pytest.param((b"*",), b"zstd", id="star accepts everything"),
        pytest.param((b"*;q=0.5, br",), b"br", id="listed coding beats star"),
        pytest.param((b"*, zstd;q=0",), b"br", id="star with one refused"),
        pytest.param((b"*;q=0",), None, id="star;q=0 refuses everything"),
        pytest.param((b"identity",), None, id="identity only"),
        pytest.param((b"gzip;q=0.5, identity",), None, id="identity weighs more than gzip"),
        pytest.param((b"GZip;q=1, identity;q=0",), b"gzip", id="identity;q=0 keeps gzip"),
        pytest.param((b"identity;q=0",), None, id="identity;q=0 alone: no 406, identity"),
        pytest.param((b"gzip", b"br"), b"br", id="repeated fields are one list"),
        pytest.param((b"br;q=0", b"gzip"), b"gzip", id="refusal in one field, offer in another"),
        pytest.param((b"x-gzip",), b"gzip", id="x-gzip is gzip"),
        pytest.param((b"gzip;q=2, br;q=abc",), None, id="malformed weights are dropped"),
        pytest.param((b"deflate, compress",), None, id="only codings not offered"),
        pytest.param((b" , ,gzip ,",), b"gzip", id="empty members ignored"),
    ],
)
def test_negotiate(fields: tuple[bytes, ...], chosen: bytes | None) -> None:
    assert negotiate(fields, PREFERENCE) == chosen


def test_server_preference_is_configurable() -> None:
    assert negotiate((b"gzip, br, zstd",), (b"gzip", b"br")) == b"gzip"
    assert negotiate((b"zstd",), (b"gzip", b"br")) is None


@pytest.mark.parametrize(
    ("accept", "coding"),
    [
        pytest.param("gzip, deflate, br, zstd", "zstd", id="zstd"),
        pytest.param("gzip, br", "br", id="br"),
        pytest.param("gzip", "gzip", id="gzip"),
        pytest.param(None, None, id="none asked"),
        pytest.param("gzip;q=0", None, id="gzip refused"),
    ],
)
async def test_body_is_encoded_with_the_negotiated_coding(
    accept: str | None, coding: str | None
) -> None:
    recorded = await get(CompressionMiddleware(respond()), accept)
    assert recorded.header("content-encoding") == coding
    assert decode(recorded) == BODY
    assert recorded.header("content-length") == str(len(recorded.body))
    assert recorded.header("vary") == "Accept-Encoding"


async def test_encodings_order_and_switches() -> None:
    app = CompressionMiddleware(respond(), encodings=("gzip", "br"))
    assert (await get(app, "zstd, br, gzip")).header("content-encoding") == "gzip"
    assert (await get(app, "zstd")).header("content-encoding") is None


# -- left untouched ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("app", "why"),
    [
        pytest.param(respond(BODY, (b"content-encoding", b"br")), "encoded", id="already br"),
        pytest.param(respond(BODY, status=206), "partial", id="206"),
        pytest.param(respond(BODY, (b"content-range", b"bytes 0-9/99")), "range", id="range"),
        pytest.param(respond(b"", status=204, content_length=False), "none", id="204"),
        pytest.param(respond(b"", status=304, content_length=False), "none", id="304"),
        pytest.param(
            respond(BODY, (b"cache-control", b"public, No-Transform")), "nt", id="no-transform"
        ),
        pytest.param(
            respond(BODY, (b"content-type", b"image/png")), "excluded", id="excluded image/png"
        ),
        pytest.param(respond(BODY, (b"content-type", b"video/mp4")), "excluded", id="video/*"),
        pytest.param(
            respond(BODY, (b"content-type", b"application/grpc+proto")), "grpc", id="grpc suffix"
        ),
    ],
)
async def test_responses_that_must_not_be_encoded_are_untouched(app: ASGIApp, why: str) -> None:
    inner = await run_asgi(app, http_scope())
    recorded = await get(CompressionMiddleware(app))
    assert recorded.messages == inner.messages


async def test_content_type_header_order_does_not_matter_for_exclusion() -> None:
    app = respond(BODY, (b"Content-Type", b"IMAGE/PNG; q=1"))
    recorded = await get(CompressionMiddleware(app))
    assert recorded.header("content-encoding") is None


async def test_identity_content_encoding_counts_as_unset() -> None:
    recorded = await get(CompressionMiddleware(respond(BODY, (b"content-encoding", b"identity"))))
    assert recorded.header_all("content-encoding") == ["zstd"]
    assert decode(recorded) == BODY


async def test_exclude_paths_are_untouched() -> None:
    app = CompressionMiddleware(respond(), exclude_paths=["/health", "/files/*"])
    assert (await get(app, path="/files/a.json")).header("content-encoding") is None
    assert (await get(app, path="/health")).header("vary") is None
    assert (await get(app, path="/other")).header("content-encoding") == "zstd"


async def test_content_type_decisions_stay_right_for_many_distinct_values() -> None:
    # Each Content-Type value's decision is remembered; an app that sends hundreds of distinct
    # values (parameters included) must still get each one right.
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        media, number = scope["path"][1:].split("/")  # "/image.png/7"
        content_type = b"%s; v=%s" % (media.replace(".", "/").encode(), number.encode())
        headers = [(b"content-type", content_type), (b"content-length", b"%d" % len(BODY))]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": BODY})

    middleware = CompressionMiddleware(app)
    for number in range(300):
        image = await get(middleware, path=f"/image.png/{number}")
        text = await get(middleware, path=f"/text.plain/{number}")
        assert image.header("content-encoding") is None, number
        assert text.header("content-encoding") == "zstd", number


async def test_exclude_content_types_is_per_instance() -> None:
    json_off = CompressionMiddleware(respond(), exclude_content_types=["application/json"])
    default = CompressionMiddleware(respond())
    assert (await get(json_off)).header("content-encoding") is None
    assert (await get(default)).header("content-encoding") == "zstd"
    assert "image/png" in DEFAULT_EXCLUDED_CONTENT_TYPES


async def test_small_body_is_identity_and_not_buffered_by_content_length() -> None:
    recorded = await get(CompressionMiddleware(respond(b"ok")))
    assert recorded.header("content-encoding") is None
    assert recorded.body == b"ok"
    assert recorded.header("content-length") == "2"
    # Never encoded whatever the client asks, so caches need not vary on Accept-Encoding.
    assert recorded.header("vary") is None


async def test_small_body_without_content_length_is_identity() -> None:
    recorded = await get(CompressionMiddleware(respond(b"ok", content_length=False)))
    assert recorded.header("content-encoding") is None
    assert recorded.body == b"ok"
    assert recorded.header("vary") is None


async def test_minimum_size_is_configurable() -> None:
    recorded = await get(CompressionMiddleware(respond(b"a" * 50), minimum_size=10))
    assert recorded.header("content-encoding") == "zstd"
    assert decode(recorded) == b"a" * 50


async def test_body_that_does_not_shrink_goes_out_as_identity() -> None:
    noise = random.Random(4).randbytes(600)
    recorded = await get(CompressionMiddleware(respond(noise, (b"etag", b'"v1"'))))
    assert recorded.header("content-encoding") is None
    assert recorded.body == noise
    assert recorded.header("content-length") == str(len(noise))
    assert recorded.header("etag") == '"v1"'
    assert recorded.header("vary") == "Accept-Encoding"


# -- headers ----------------------------------------------------------------------------------


async def test_strong_etag_becomes_weak_and_weak_stays_weak() -> None:
    strong = await get(CompressionMiddleware(respond(BODY, (b"etag", b'"abc"'))))
    weak = await get(CompressionMiddleware(respond(BODY, (b"ETag", b'W/"abc"'))))
    assert strong.header("etag") == 'W/"abc"'
    assert weak.header("etag") == 'W/"abc"'


async def test_vary_is_merged_with_the_apps_own() -> None:
    app = respond(BODY, (b"vary", b"Origin"), (b"Vary", b"accept-encoding, Cookie"))
    recorded = await get(CompressionMiddleware(app))
    assert recorded.header_all("vary") == ["Origin, accept-encoding, Cookie"]


async def test_vary_star_is_kept() -> None:
    recorded = await get(CompressionMiddleware(respond(BODY, (b"vary", b"*"))))
    assert recorded.header_all("vary") == ["*"]


async def test_vary_on_identity_responses_that_could_have_been_encoded() -> None:
    recorded = await get(CompressionMiddleware(respond()), None)
    assert recorded.header("vary") == "Accept-Encoding"
    assert recorded.body == BODY


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_an_app_may_schedule_each_send_as_an_asyncio_task() -> None:
    # create_task takes coroutines only: every send, the held response start included, is one.
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        for message in (
            {"type": "http.response.start", "status": 200, "headers": []},
            {"type": "http.response.body", "body": BODY},
        ):
            await asyncio.create_task(send(message))  # type: ignore[arg-type]

    recorded = await get(CompressionMiddleware(app))
    assert recorded.header("content-encoding") == "zstd"
    assert decode(recorded) == BODY


async def test_the_apps_header_list_is_never_edited() -> None:
    headers = [(b"content-type", b"text/plain"), (b"content-length", str(len(BODY)).encode())]

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": BODY})

    await get(CompressionMiddleware(app))
    assert headers == [(b"content-type", b"text/plain"), (b"content-length", b"%d" % len(BODY))]


# -- HEAD parity ------------------------------------------------------------------------------


@pytest.mark.parametrize("accept", ["gzip", "br", "zstd", "gzip;q=0", None])
async def test_head_carries_the_encoding_headers_get_would(accept: str | None) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        # As Starlette does: HEAD keeps GET's Content-Length and sends no body.
        headers = [(b"content-type", b"text/html"), (b"content-length", b"%d" % len(BODY))]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send(
            {"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else BODY}
        )

    middleware = CompressionMiddleware(app)
    get_response = await get(middleware, accept)
    head_response = await get(middleware, accept, method="HEAD")
    for name in ("content-encoding", "vary"):
        assert head_response.header(name) == get_response.header(name)
    assert head_response.body == b""


async def test_head_of_a_small_resource_stays_identity() -> None:
    recorded = await get(CompressionMiddleware(respond(b"ok")), "gzip", method="HEAD")
    assert recorded.header("content-encoding") is None
    assert recorded.header("content-length") == "2"


# -- GZipMiddleware -----------------------------------------------------------------------------


async def test_gzip_middleware_takes_starlettes_arguments() -> None:
    app = GZipMiddleware(respond(b"x" * 300), minimum_size=100, compresslevel=1)
    recorded = await get(app, "gzip, br, zstd")
    assert recorded.header("content-encoding") == "gzip"
    assert gzip.decompress(recorded.body) == b"x" * 300


async def test_gzip_middleware_honours_q_zero_unlike_starlette() -> None:
    recorded = await get(GZipMiddleware(respond()), "gzip;q=0")
    assert recorded.header("content-encoding") is None


# -- configuration ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        pytest.param(
            {"gzip_level": 10},
            "gzip_level must be an integer between 1 and 9, got 10",
            id="gzip_level",
        ),
        pytest.param(
            {"brotli_quality": -1},
            "brotli_quality must be an integer between 0 and 11, got -1",
            id="brotli_quality",
        ),
        pytest.param(
            {"zstd_level": 23},
            "zstd_level must be an integer between 1 and 22, got 23",
            id="zstd_level",
        ),
        pytest.param(
            {"minimum_size": -1}, "minimum_size must be a non-negative integer", id="minimum_size"
        ),
        pytest.param({"thread_minimum_size": 1.5}, "thread_minimum_size must be", id="thread size"),
        pytest.param(
            {"encodings": ("gzip", "deflate")}, "encodings entries must be one of", id="deflate"
        ),
        pytest.param({"encodings": ("gzip", "gzip")}, "encodings lists 'gzip' twice", id="twice"),
        pytest.param(
            {"exclude_content_types": ["png"]}, "media types like 'image/png'", id="bad type"
        ),
        pytest.param({"streaming_content_types": ["/x"]}, "got '/x'", id="bad streaming type"),
        pytest.param({"exclude_paths": ["health"]}, "starting with '/'", id="bad path"),
    ],
)
def test_bad_configuration_names_the_argument(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        CompressionMiddleware(respond(), **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        pytest.param({"encodings": "gzip"}, "encodings must be a sequence", id="encodings str"),
        pytest.param({"exclude_content_types": "image/png"}, "must be a sequence", id="types str"),
    ],
)
def test_a_string_where_a_sequence_belongs_is_a_type_error(
    kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(TypeError, match=message):
        CompressionMiddleware(respond(), **kwargs)  # type: ignore[arg-type]


def test_gzip_middleware_names_compresslevel() -> None:
    with pytest.raises(ValueError, match="compresslevel must be an integer between 1 and 9"):
        GZipMiddleware(respond(), compresslevel=0)


def test_a_missing_zstd_module_fails_at_construction(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "backports.zstd", None)
    monkeypatch.setitem(sys.modules, "compression.zstd", None)
    with pytest.raises(ImportError, match="zstd needs"):
        CompressionMiddleware(respond())
    CompressionMiddleware(respond(), encodings=("br", "gzip"))


@given(fields=st.lists(st.binary(max_size=60), max_size=3))
def test_negotiate_never_raises_and_only_picks_what_is_offered(fields: list[bytes]) -> None:
    assert negotiate(tuple(fields), PREFERENCE) in (None, *PREFERENCE)


@given(
    status=st.integers(100, 599),
    headers=st.lists(
        st.tuples(
            st.sampled_from(
                [b"content-type", b"Content-Length", b"content-encoding", b"cache-control", b"x"]
            ),
            st.binary(max_size=30),
        ),
        max_size=5,
    ),
)
def test_response_plan_never_raises_on_any_header_bytes(
    status: int, headers: list[tuple[bytes, bytes]]
) -> None:
    middleware = CompressionMiddleware(respond())
    plan, length = response_plan(status, headers, 500, middleware._excluded, middleware._streaming)
    assert length is None or length >= 0
    if status in (204, 206, 304) or status < 200:
        assert (plan, length) == (0, None)  # left untouched
