"""CompressionMiddleware on the ASGI message level: streaming and flushing, server-sent events,
trailers, early hints, pathsend, zerocopysend, unknown messages, worker threads, and property
tests that any chunking of any body round-trips through every coding."""

from __future__ import annotations

import gzip
from collections.abc import Callable
from typing import Any

import anyio
import brotli
import pytest
from backports import zstd
from hypothesis import given, settings
from hypothesis import strategies as st

from middlewares._core.codecs import ZSTD_WINDOW_LOG_MAX
from middlewares._types import ASGIApp, Message, Receive, Scope, Send
from middlewares.compression import CompressionMiddleware
from middlewares.testing import Recorded, http_scope, run_asgi

pytestmark = pytest.mark.anyio

CODINGS = ["gzip", "br", "zstd"]
LINE = b'{"event": "tick", "payload": "abcdefghijklmnopqrstuvwxyz"}\n'


def decoder_for(coding: str | None) -> Callable[[bytes], bytes]:
    """A streaming decoder as a client has: feed bytes as they arrive, get text so far."""
    if coding == "gzip":
        inflate = __import__("zlib").decompressobj(31)
        return lambda data: bytes(inflate.decompress(data))
    if coding == "br":
        unbrotli = brotli.Decompressor()
        return lambda data: bytes(unbrotli.process(data))
    if coding == "zstd":
        unzstd = zstd.ZstdDecompressor(
            options={zstd.DecompressionParameter.window_log_max: ZSTD_WINDOW_LOG_MAX}
        )
        return lambda data: bytes(unzstd.decompress(data))
    return lambda data: data


def decode(recorded: Recorded) -> bytes:
    return decoder_for(recorded.header("content-encoding"))(recorded.body)


class Tap:
    """An outer layer recording what reaches the client while the inner app still runs."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.sent: list[Message] = []
        self.decoded = b""
        self._decode: Callable[[bytes], bytes] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_tapped(message: Message) -> None:
            self.sent.append(message)
            if message["type"] == "http.response.start":
                coding = dict(message["headers"]).get(b"content-encoding")
                self._decode = decoder_for(None if coding is None else coding.decode())
            elif message["type"] == "http.response.body" and self._decode is not None:
                self.decoded += self._decode(message.get("body", b""))
            await send(message)

        await self.app(scope, receive, send_tapped)


def chunked_app(
    chunks: list[bytes], content_type: bytes = b"application/json", on_sent: Any = None
) -> ASGIApp:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        headers = [(b"content-type", content_type)]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        if on_sent is not None:
            on_sent(-1)
        for index, chunk in enumerate(chunks):
            more = index < len(chunks) - 1
            await send({"type": "http.response.body", "body": chunk, "more_body": more})
            if on_sent is not None:
                on_sent(index)

    return app


def scope_for(coding: str | None, **extensions: Any) -> Scope:
    headers = {} if coding is None else {"accept-encoding": coding}
    return http_scope(headers=headers, extensions=dict(extensions))


# -- streaming --------------------------------------------------------------------------------


@pytest.mark.parametrize("coding", CODINGS)
async def test_stream_is_held_only_until_minimum_size_then_flushed_per_message(
    coding: str,
) -> None:
    chunks = [LINE * 3, LINE * 6, LINE, LINE * 2, b""]
    seen: list[tuple[int, bytes]] = []
    tap: Tap

    def on_sent(index: int) -> None:
        seen.append((len(tap.sent), tap.decoded))

    tap = Tap(CompressionMiddleware(chunked_app(chunks, on_sent=on_sent), minimum_size=500))
    recorded = await run_asgi(tap, scope_for(coding))
    # Nothing leaves while fewer than 500 bytes are known (start held, first chunk held)...
    assert seen[0] == (0, b"")
    assert seen[1] == (0, b"")
    # ...then every message reaches the client decodable, as soon as it is sent.
    assert seen[2][1] == LINE * 9
    assert seen[3][1] == LINE * 10
    assert seen[4][1] == LINE * 12
    assert recorded.header("content-encoding") == coding
    assert recorded.header("content-length") is None
    assert decode(recorded) == b"".join(chunks)


@pytest.mark.parametrize("coding", CODINGS)
@pytest.mark.parametrize(
    "content_type", [b"text/event-stream", b"application/x-ndjson; charset=utf-8"]
)
async def test_event_streams_send_headers_with_the_first_event_and_each_event_on_its_own(
    coding: str, content_type: bytes
) -> None:
    events = [b"data: one\n\n", b"data: two\n\n", b"", b"data: three\n\n", b""]
    seen: list[tuple[int, bytes]] = []
    tap: Tap

    def on_sent(index: int) -> None:
        seen.append((len(tap.sent), tap.decoded))

    tap = Tap(CompressionMiddleware(chunked_app(events, content_type, on_sent)))
    recorded = await run_asgi(tap, scope_for(coding))
    # The start waits only for the first body message, which tells a stream from a one-shot
    # body or a pathsend; that first event is not held back, though it is tiny.
    assert seen[0] == (0, b"")
    assert [s[1] for s in seen[1:]] == [
        b"data: one\n\n",
        b"data: one\n\ndata: two\n\n",
        b"data: one\n\ndata: two\n\n",
        b"data: one\n\ndata: two\n\ndata: three\n\n",
        b"data: one\n\ndata: two\n\ndata: three\n\n",
    ]
    assert recorded.header("content-encoding") == coding
    assert recorded.header("vary") == "Accept-Encoding"


async def test_stream_ending_inside_the_look_ahead_is_identity_in_one_message() -> None:
    recorded = await run_asgi(
        CompressionMiddleware(chunked_app([b"ab", b"cd", b""])), scope_for("gzip")
    )
    assert recorded.header("content-encoding") is None
    assert recorded.body_chunks == [b"abcd"]
    # Below minimum_size whatever the client accepts: the same headers as a small one-shot body.
    assert recorded.header("vary") is None


async def test_stream_ending_inside_the_look_ahead_above_minimum_gets_a_length() -> None:
    recorded = await run_asgi(
        CompressionMiddleware(chunked_app([LINE * 5, LINE * 5]), minimum_size=500),
        scope_for("br"),
    )
    assert recorded.header("content-encoding") == "br"
    assert recorded.header("content-length") == str(len(recorded.body))
    assert decode(recorded) == LINE * 10


async def test_gzip_stream_is_one_member_with_flush_points() -> None:
    # Trap 16 (Django): one member per chunk breaks some clients; this is one stream.
    chunks = [LINE * 20, LINE, LINE, LINE]
    recorded = await run_asgi(CompressionMiddleware(chunked_app(chunks)), scope_for("gzip"))
    assert recorded.body.count(b"\x1f\x8b\x08") == 1
    assert gzip.decompress(recorded.body) == b"".join(chunks)


async def test_zstd_stream_with_a_known_length_pledges_it() -> None:
    body = LINE * 100

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        headers = [(b"content-type", b"text/plain"), (b"content-length", b"%d" % len(body))]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body[:2000], "more_body": True})
        await send({"type": "http.response.body", "body": body[2000:]})

    recorded = await run_asgi(CompressionMiddleware(app), scope_for("zstd"))
    assert recorded.header("content-length") is None
    assert zstd.get_frame_info(recorded.body).decompressed_size == len(body)
    assert decode(recorded) == body


async def test_zstd_at_level_22_stays_decodable_by_browsers() -> None:
    # Trap 23: a 10 MiB stream at level 22 still fits an 8 MB window (RFC 9659).
    chunk = bytes(range(256)) * 4096
    recorded = await run_asgi(
        CompressionMiddleware(chunked_app([chunk] * 10), zstd_level=22), scope_for("zstd")
    )
    assert decode(recorded) == chunk * 10


@pytest.mark.parametrize("coding", CODINGS)
@settings(max_examples=25)
@given(
    body=st.binary(max_size=3000) | st.text(max_size=3000).map(str.encode),
    cuts=st.lists(st.integers(0, 3000), max_size=6),
    minimum_size=st.sampled_from([0, 1, 500, 5000]),
)
async def test_any_chunking_of_any_body_round_trips_through_the_middleware(
    coding: str, body: bytes, cuts: list[int], minimum_size: int
) -> None:
    points = sorted({min(c, len(body)) for c in cuts})
    chunks = [body[a:b] for a, b in zip([0, *points], [*points, len(body)], strict=True)]
    app = CompressionMiddleware(chunked_app(chunks), minimum_size=minimum_size)
    recorded = await run_asgi(app, scope_for(coding))
    assert decode(recorded) == body
    length = recorded.header("content-length")
    assert length is None or int(length) == len(recorded.body)


# -- ASGI messages ----------------------------------------------------------------------------


@pytest.mark.parametrize("coding", [*CODINGS, None])
async def test_trailers_are_forwarded_and_content_length_dropped(coding: str | None) -> None:
    body = LINE * 30

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        headers = [(b"content-type", b"text/plain"), (b"content-length", b"%d" % len(body))]
        await send(
            {"type": "http.response.start", "status": 200, "headers": headers, "trailers": True}
        )
        await send({"type": "http.response.body", "body": body})
        await send({"type": "http.response.trailers", "headers": [(b"x-checksum", b"abc")]})

    scope = scope_for(coding, **{"http.response.trailers": {}})
    recorded = await run_asgi(CompressionMiddleware(app), scope)
    assert recorded.messages[-1] == {
        "type": "http.response.trailers",
        "headers": [(b"x-checksum", b"abc")],
    }
    assert decode(recorded) == body
    if coding is not None:
        assert recorded.header("content-length") is None


async def test_early_hints_pass_through_before_the_response() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        hint = {"type": "http.response.early_hint", "links": ["</style.css>; rel=preload"]}
        await send(hint)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": LINE * 20})

    scope = scope_for("gzip", **{"http.response.early_hint": {}})
    recorded = await run_asgi(CompressionMiddleware(app), scope)
    assert [m["type"] for m in recorded.messages] == [
        "http.response.early_hint",
        "http.response.start",
        "http.response.body",
    ]
    assert recorded.header("content-encoding") == "gzip"


async def test_pathsend_passes_through_with_the_start() -> None:
    # Trap 24: brotli-asgi drops both messages, so the client gets no response at all.
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        headers = [(b"content-type", b"text/html"), (b"content-length", b"5000")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.pathsend", "path": "/srv/index.html"})

    scope = scope_for("br", **{"http.response.pathsend": {}})
    recorded = await run_asgi(CompressionMiddleware(app), scope)
    assert [m["type"] for m in recorded.messages] == [
        "http.response.start",
        "http.response.pathsend",
    ]
    assert recorded.header("content-encoding") is None
    assert recorded.header("content-length") == "5000"


@pytest.mark.parametrize(
    ("first", "encoded"),
    [
        pytest.param(b"held", False, id="inside the look-ahead: what was held goes out unencoded"),
        pytest.param(LINE * 20, True, id="inside an encoded stream: the stream stays encoded"),
    ],
)
async def test_unknown_message_mid_stream_is_forwarded_in_order(
    first: bytes, encoded: bool
) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": first, "more_body": True})
        await send({"type": "http.response.x-custom", "data": 1})
        await send({"type": "http.response.body", "body": LINE * 3})

    recorded = await run_asgi(CompressionMiddleware(app), scope_for("gzip"))
    assert [m["type"] for m in recorded.messages] == [
        "http.response.start",
        "http.response.body",
        "http.response.x-custom",
        "http.response.body",
    ]
    if encoded:
        assert recorded.header("content-encoding") == "gzip"
        assert gzip.decompress(recorded.body) == first + LINE * 3
    else:
        assert recorded.header("content-encoding") is None
        assert recorded.body == first + LINE * 3


@pytest.mark.parametrize(
    ("coding", "offered"), [("gzip", False), ("zstd", False), (None, True), ("gzip;q=0", True)]
)
async def test_zerocopysend_is_hidden_only_while_encoding_is_possible(
    coding: str | None, offered: bool
) -> None:
    seen: list[dict[str, Any]] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope["extensions"])
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    scope = scope_for(coding, **{"http.response.zerocopysend": {}, "http.response.trailers": {}})
    await run_asgi(CompressionMiddleware(app), scope)
    assert ("http.response.zerocopysend" in seen[0]) is offered
    assert "http.response.trailers" in seen[0]
    # The server's own scope is never edited.
    assert "http.response.zerocopysend" in scope["extensions"]


async def test_body_before_start_is_a_protocol_error_naming_what_was_expected() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.body", "body": b"oops"})

    with pytest.raises(RuntimeError, match=r"expected http\.response\.start"):
        await run_asgi(CompressionMiddleware(app), scope_for("gzip"), validate=False)


@pytest.mark.parametrize("kind", ["lifespan", "websocket"])
async def test_other_scopes_pass_through(kind: str) -> None:
    calls: list[tuple[Scope, Receive, Send]] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        calls.append((scope, receive, send))

    async def receive() -> Message:
        return {"type": "lifespan.startup"}

    async def send(message: Message) -> None:
        return None

    scope = {"type": kind}
    await CompressionMiddleware(app)(scope, receive, send)
    assert calls == [(scope, receive, send)]


# -- worker threads ---------------------------------------------------------------------------


@pytest.mark.parametrize("coding", CODINGS)
async def test_large_chunks_are_compressed_under_the_thread_limiter(coding: str) -> None:
    limiter = anyio.CapacityLimiter(1)
    app = CompressionMiddleware(
        chunked_app([LINE * 2000, LINE * 2000]),
        thread_minimum_size=64 * 1024,
        thread_limiter=limiter,
    )
    small = CompressionMiddleware(chunked_app([LINE * 20]), thread_limiter=limiter)
    results: list[Recorded] = []
    holder = object()
    await limiter.acquire_on_behalf_of(holder)
    async with anyio.create_task_group() as group:

        async def run() -> None:
            results.append(await run_asgi(app, scope_for(coding)))

        group.start_soon(run)
        await anyio.wait_all_tasks_blocked()
        # The big chunk waits for a worker thread; a small response is compressed inline.
        assert limiter.statistics().tasks_waiting == 1
        assert decode(await run_asgi(small, scope_for(coding))) == LINE * 20
        limiter.release_on_behalf_of(holder)
    assert decode(results[0]) == LINE * 4000
