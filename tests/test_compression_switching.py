"""Switching to CompressionMiddleware and GZipMiddleware from Starlette and starlette-compress:
the peers' arguments and defaults, event streams decided at their first body message, bounded
messages for large bodies, and responses below minimum_size left byte for byte."""

from __future__ import annotations

import inspect
import os

import pytest
import starlette_compress
from backports import zstd
from starlette.middleware.gzip import GZipMiddleware as StarletteGZip

from middlewares import CompressionMiddleware, GZipMiddleware
from middlewares._types import ASGIApp, Message, Receive, Scope, Send
from middlewares.testing import Recorded, run_asgi

from .test_compression_streaming import chunked_app, decode, scope_for

pytestmark = pytest.mark.anyio

EVENT = b"data: " + b"tick " * 200 + b"\n\n"


def one_shot_app(body: bytes, headers: list[tuple[bytes, bytes]]) -> ASGIApp:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    return app


def pathsend_app(headers: list[tuple[bytes, bytes]]) -> ASGIApp:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.pathsend", "path": "/srv/events.log"})

    return app


def PATHSEND(coding: str) -> Scope:
    return scope_for(coding, **{"http.response.pathsend": {}})


def starts(recorded: Recorded) -> list[Message]:
    return [m for m in recorded.messages if m["type"] == "http.response.start"]


# -- Starlette's GZipMiddleware --------------------------------------------------------------


@pytest.mark.parametrize(
    "middleware",
    [
        pytest.param(StarletteGZip, id="starlette gzip"),
        pytest.param(GZipMiddleware, id="our gzip drop-in"),
    ],
)
async def test_gzip_drop_in_leaves_server_sent_events_alone_like_starlette(
    middleware: type,
) -> None:
    app = middleware(chunked_app([EVENT, EVENT, b""], b"text/event-stream"))
    recorded = await run_asgi(app, scope_for("gzip"))
    assert recorded.header("content-encoding") is None
    assert recorded.body == EVENT * 2


async def test_compression_middleware_still_encodes_event_streams() -> None:
    app = CompressionMiddleware(chunked_app([EVENT, EVENT, b""], b"text/event-stream"))
    recorded = await run_asgi(app, scope_for("gzip"))
    assert recorded.header("content-encoding") == "gzip"
    assert decode(recorded) == EVENT * 2


# -- event streams decide at the first body message --------------------------------------------


@pytest.mark.parametrize("coding", ["gzip", "br", "zstd"])
async def test_event_stream_sent_by_pathsend_goes_out_untouched_not_as_corrupt_br(
    coding: str,
) -> None:
    headers = [(b"Content-Type", b"text/event-stream")]
    recorded = await run_asgi(CompressionMiddleware(pathsend_app(headers)), PATHSEND(coding))
    assert starts(recorded)[0]["headers"] == headers
    assert recorded.messages[-1]["type"] == "http.response.pathsend"


async def test_one_shot_event_stream_is_compressed_whole_with_a_content_length() -> None:
    app = one_shot_app(EVENT * 3, [(b"content-type", b"text/event-stream")])
    recorded = await run_asgi(CompressionMiddleware(app), scope_for("br"))
    assert recorded.header("content-encoding") == "br"
    assert recorded.header("content-length") == str(len(recorded.body))
    assert decode(recorded) == EVENT * 3


# -- starlette-compress's arguments ------------------------------------------------------------


def test_every_starlette_compress_argument_is_accepted() -> None:
    theirs = set(inspect.signature(starlette_compress.CompressMiddleware).parameters)
    ours = set(inspect.signature(CompressionMiddleware).parameters)
    assert theirs <= ours


@pytest.mark.parametrize(
    ("switches", "chosen"),
    [
        pytest.param({}, "zstd", id="all on: zstd first"),
        pytest.param({"zstd": False}, "br", id="zstd off: br"),
        pytest.param({"zstd": False, "brotli": False}, "gzip", id="zstd and brotli off: gzip"),
        pytest.param({"zstd": False, "brotli": False, "gzip": False}, None, id="all off: identity"),
    ],
)
async def test_coding_switches_turn_codings_off(switches: dict[str, bool], chosen: str) -> None:
    app = CompressionMiddleware(one_shot_app(EVENT, []), **switches)
    recorded = await run_asgi(app, scope_for("zstd, br, gzip"))
    assert recorded.header("content-encoding") == chosen


def test_a_coding_turned_off_does_not_validate_its_level() -> None:
    CompressionMiddleware(one_shot_app(b"", []), brotli=False, brotli_quality=99)


async def test_remove_accept_encoding_hides_it_from_the_app_but_still_encodes() -> None:
    seen: list[Scope] = []
    inner = one_shot_app(EVENT, [])

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope)
        await inner(scope, receive, send)

    middleware = CompressionMiddleware(app, remove_accept_encoding=True)
    recorded = await run_asgi(middleware, scope_for("gzip"))
    assert [k for k, _ in seen[0]["headers"] if k == b"accept-encoding"] == []
    assert recorded.header("content-encoding") == "gzip"


# -- large and incompressible bodies --------------------------------------------------------


async def test_ten_mib_one_shot_body_is_sent_in_bounded_messages() -> None:
    body = os.urandom(5 * 1024 * 1024).hex().encode()  # 10 MiB that halves
    app = CompressionMiddleware(one_shot_app(body, [(b"content-length", b"%d" % len(body))]))
    recorded = await run_asgi(app, scope_for("gzip"))
    chunks = recorded.body_chunks
    assert len(chunks) > 1
    assert max(len(chunk) for chunk in chunks) <= 64 * 1024
    assert recorded.header("content-length") == str(len(recorded.body))
    assert decode(recorded) == body


async def test_a_large_body_that_does_not_shrink_goes_out_as_identity_in_bounded_messages() -> None:
    body = os.urandom(300 * 1024)
    app = CompressionMiddleware(one_shot_app(body, [(b"content-length", b"%d" % len(body))]))
    recorded = await run_asgi(app, scope_for("gzip"))
    assert recorded.header("content-encoding") is None
    assert recorded.header("content-length") == str(len(body))
    assert max(len(chunk) for chunk in recorded.body_chunks) <= 64 * 1024
    assert recorded.body == body


@pytest.mark.parametrize(
    "chunks",
    [
        pytest.param([EVENT * 4], id="one-shot body"),
        pytest.param([EVENT * 2, EVENT * 2, b""], id="stream with a content-length"),
    ],
)
async def test_zstd_frames_declare_their_content_size(chunks: list[bytes]) -> None:
    body = b"".join(chunks)
    inner = chunked_app(chunks)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_length(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"].append((b"content-length", b"%d" % len(body)))
            await send(message)

        await inner(scope, receive, send_with_length)

    recorded = await run_asgi(CompressionMiddleware(app), scope_for("zstd"))
    assert recorded.header("content-encoding") == "zstd"
    assert zstd.get_frame_info(recorded.body).decompressed_size == len(body)


# -- below minimum_size: byte for byte ---------------------------------------------------------

SMALL_HEADERS = [(b"Content-Type", b"text/plain"), (b"X-Custom", b"kept")]


@pytest.mark.parametrize(
    "app",
    [
        pytest.param(one_shot_app(b"small", SMALL_HEADERS), id="small body, no length"),
        pytest.param(
            one_shot_app(b"small", [*SMALL_HEADERS, (b"Content-Length", b"5")]),
            id="small body with its length",
        ),
        pytest.param(
            pathsend_app([*SMALL_HEADERS, (b"Content-Length", b"5")]), id="small pathsend"
        ),
        pytest.param(pathsend_app(SMALL_HEADERS), id="pathsend without a length"),
    ],
)
async def test_a_response_left_alone_keeps_its_headers_byte_for_byte(app: ASGIApp) -> None:
    recorded = await run_asgi(CompressionMiddleware(app), PATHSEND("gzip"))
    sent = starts(recorded)[0]["headers"]
    assert sent[: len(SMALL_HEADERS)] == SMALL_HEADERS
    assert all(name.lower() != b"vary" for name, _ in sent)
