"""RequestDecompressionMiddleware: request bodies decoded as a stream, 413 past the size and
ratio limits (a bomb never reaches memory), 400 for corrupt data, 415 for unknown codings."""

from __future__ import annotations

import gzip
import re

import brotli
import pytest
from backports import zstd

from middlewares._types import ASGIApp, Message, Receive, Scope, Send
from middlewares.compression import RequestDecompressionMiddleware
from middlewares.testing import Recorded, http_scope, run_asgi

pytestmark = pytest.mark.anyio

TEXT = b"".join(b'{"id": %d, "name": "user %d"}\n' % (i, i) for i in range(3000))
ENCODE = {
    "gzip": gzip.compress,
    "br": brotli.compress,
    "zstd": zstd.compress,
}


def echo_app(pieces: list[int] | None = None, headers_seen: list[Scope] | None = None) -> ASGIApp:
    """Reads the whole body, then answers with it; records each piece's size."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if headers_seen is not None:
            headers_seen.append(scope)
        body = b""
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            if pieces is not None:
                pieces.append(len(message.get("body", b"")))
            if not message.get("more_body", False):
                break
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})

    return app


async def post(
    app: ASGIApp, body: bytes | list[bytes], coding: str | None, **headers: str
) -> Recorded:
    raw = dict(headers)
    if coding is not None:
        raw["content-encoding"] = coding
    payload = body if isinstance(body, bytes) else b"".join(body)
    raw["content-length"] = str(len(payload))
    return await run_asgi(app, http_scope("POST", "/", headers=raw), body=body)


@pytest.mark.parametrize("coding", ["gzip", "br", "zstd", "GZip"])
async def test_body_is_decoded_and_encoding_headers_removed(coding: str) -> None:
    scopes: list[Scope] = []
    encoded = ENCODE[coding.lower()](TEXT)
    app = RequestDecompressionMiddleware(echo_app(headers_seen=scopes))
    recorded = await post(app, encoded, coding, **{"content-type": "application/json"})
    assert recorded.status == 200
    assert recorded.body == TEXT
    names = [k for k, _ in scopes[0]["headers"]]
    assert b"content-encoding" not in names
    assert b"content-length" not in names
    assert b"content-type" in names


@pytest.mark.parametrize("coding", ["gzip", "br", "zstd"])
async def test_body_arriving_in_many_messages_is_decoded_in_bounded_pieces(coding: str) -> None:
    encoded = ENCODE[coding](TEXT * 10)
    chunks = [encoded[i : i + 100] for i in range(0, len(encoded), 100)]
    pieces: list[int] = []
    recorded = await post(RequestDecompressionMiddleware(echo_app(pieces)), chunks, coding)
    assert recorded.body == TEXT * 10
    assert max(pieces) <= 64 * 1024


async def test_requests_without_content_encoding_pass_through() -> None:
    recorded = await post(RequestDecompressionMiddleware(echo_app()), b"plain", None)
    assert recorded.body == b"plain"
    recorded = await post(RequestDecompressionMiddleware(echo_app()), b"plain", "identity")
    assert recorded.body == b"plain"


@pytest.mark.parametrize("coding", ["gzip", "br", "zstd"])
async def test_a_decompression_bomb_gets_413_without_reaching_memory(coding: str) -> None:
    bomb = ENCODE[coding](b"\0" * (64 * 1024 * 1024))
    pieces: list[int] = []
    app = RequestDecompressionMiddleware(echo_app(pieces), max_size=1024 * 1024, max_ratio=10_000)
    recorded = await post(app, bomb, coding)
    assert recorded.status == 413
    assert recorded.body == b"Content Too Large"
    # The app was handed at most the limit, piece by piece, never the 64 MiB.
    assert sum(pieces) <= 1024 * 1024
    assert max(pieces) <= 64 * 1024


async def test_expansion_ratio_limit_gets_413() -> None:
    bomb = gzip.compress(b"a" * (4 * 1024 * 1024))
    app = RequestDecompressionMiddleware(echo_app(), max_ratio=50)
    recorded = await post(app, bomb, "gzip")
    assert recorded.status == 413


async def test_small_bodies_may_shrink_more_than_the_ratio() -> None:
    app = RequestDecompressionMiddleware(echo_app(), max_ratio=2)
    recorded = await post(app, gzip.compress(b"a" * 10_000), "gzip")
    assert recorded.body == b"a" * 10_000


@pytest.mark.parametrize(
    ("coding", "header"),
    [
        pytest.param("deflate", "deflate", id="deflate"),
        pytest.param("compress", "compress", id="compress"),
        pytest.param("gzip, br", "gzip, br", id="two codings stacked"),
    ],
)
async def test_unknown_coding_gets_415_with_accept_encoding(coding: str, header: str) -> None:
    recorded = await post(RequestDecompressionMiddleware(echo_app()), b"data", coding)
    assert recorded.status == 415
    assert recorded.header("accept-encoding") == "zstd, br, gzip"
    assert header.encode() in recorded.body


async def test_a_disabled_coding_gets_415() -> None:
    app = RequestDecompressionMiddleware(echo_app(), encodings=("gzip",))
    recorded = await post(app, zstd.compress(TEXT), "zstd")
    assert recorded.status == 415
    assert recorded.header("accept-encoding") == "gzip"


@pytest.mark.parametrize("coding", ["gzip", "br", "zstd"])
async def test_corrupt_body_gets_400(coding: str) -> None:
    recorded = await post(
        RequestDecompressionMiddleware(echo_app()), b"not compressed!" * 9, coding
    )
    assert recorded.status == 400
    assert recorded.body.startswith(b"Malformed request body")


@pytest.mark.parametrize("coding", ["gzip", "br", "zstd"])
async def test_truncated_body_gets_400(coding: str) -> None:
    encoded = ENCODE[coding](TEXT)
    recorded = await post(RequestDecompressionMiddleware(echo_app()), encoded[:-20], coding)
    assert recorded.status == 400
    assert recorded.body == b"Truncated request body"


@pytest.mark.parametrize("coding", ["gzip", "x-gzip", "br", "zstd"])
async def test_an_empty_post_with_a_content_encoding_is_an_empty_body(coding: str) -> None:
    recorded = await post(RequestDecompressionMiddleware(echo_app()), b"", coding)
    assert recorded.status == 200
    assert recorded.body == b""


async def test_x_gzip_request_body_is_decoded_as_gzip() -> None:
    recorded = await post(
        RequestDecompressionMiddleware(echo_app()), ENCODE["gzip"](TEXT), "x-gzip"
    )
    assert recorded.status == 200
    assert recorded.body == TEXT


async def test_an_app_that_turns_the_failure_into_a_500_still_sends_413() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        try:
            while (await receive()).get("more_body", False):
                pass
        except Exception:
            # What a framework's error handler does with an exception from receive.
            await send({"type": "http.response.start", "status": 500, "headers": []})
            await send({"type": "http.response.body", "body": b"Internal Server Error"})
            raise

    bomb = gzip.compress(b"\0" * (32 * 1024 * 1024))
    recorded = await post(RequestDecompressionMiddleware(app, max_size=1024), bomb, "gzip")
    assert recorded.status == 413
    assert recorded.body == b"Content Too Large"
    assert len(recorded.of_type("http.response.start")) == 1


async def test_after_the_response_started_the_body_ends_as_a_disconnect() -> None:
    received: list[Message] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        while True:
            message = await receive()
            received.append(message)
            if message["type"] == "http.disconnect" or not message.get("more_body"):
                break
        # Asking again keeps reporting the disconnect.
        received.append(await receive())
        await send({"type": "http.response.body", "body": b"streamed"})

    bomb = gzip.compress(b"\0" * (32 * 1024 * 1024))
    recorded = await post(RequestDecompressionMiddleware(app, max_size=100_000), bomb, "gzip")
    assert recorded.status == 200
    assert received[-2:] == [{"type": "http.disconnect"}, {"type": "http.disconnect"}]
    assert sum(len(m.get("body", b"")) for m in received) <= 100_000


async def test_a_client_disconnect_reaches_the_app() -> None:
    messages = iter([{"type": "http.disconnect"}])

    async def receive() -> Message:
        return next(messages)

    received: list[Message] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        received.append(await receive())

    scope = http_scope("POST", headers={"content-encoding": "gzip"})
    await run_asgi(RequestDecompressionMiddleware(app), scope, receive=receive)
    assert received == [{"type": "http.disconnect"}]


async def test_other_scopes_pass_through() -> None:
    seen: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope["type"])

    async def receive() -> Message:
        return {"type": "lifespan.startup"}

    async def send(message: Message) -> None:
        return None

    await RequestDecompressionMiddleware(app)({"type": "lifespan"}, receive, send)
    assert seen == ["lifespan"]


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        pytest.param(
            {"max_size": 0}, ValueError, "max_size must be a positive integer, got 0", id="max_size"
        ),
        pytest.param(
            {"max_ratio": True},
            ValueError,
            "max_ratio must be a positive integer, got True",
            id="max_ratio",
        ),
        pytest.param(
            {"encodings": ["lz4"]}, ValueError, "encodings entries must be one of", id="lz4"
        ),
        pytest.param(
            {"encodings": ["br", "br"]}, ValueError, "encodings lists 'br' twice", id="twice"
        ),
        pytest.param(
            {"encodings": "gzip"}, TypeError, "encodings must be a sequence", id="a string"
        ),
    ],
)
def test_bad_configuration_names_the_argument(
    kwargs: dict[str, object], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=re.escape(message)):
        RequestDecompressionMiddleware(echo_app(), **kwargs)  # type: ignore[arg-type]
