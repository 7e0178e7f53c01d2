"""Compression: a tiny response below ``minimum_size``, and JSON bodies per coding against the
raw compressor call at the same level, beside Starlette GZip, brotli-asgi and
starlette-compress in the same run."""

from __future__ import annotations

import gzip
import json
import random
import zlib
from collections.abc import Callable

import anyio.to_thread
import brotli
from backports import zstd
from brotli_asgi import BrotliMiddleware
from starlette.middleware.gzip import GZipMiddleware as StarletteGZip
from starlette_compress import CompressMiddleware

from middlewares._types import ASGIApp, Message, Receive, Scope, Send
from middlewares.compression import CompressionMiddleware, GZipMiddleware
from middlewares.testing import http_scope

from .harness import Case, PassThrough, respond_with

ACCEPT = http_scope(headers={"accept-encoding": "gzip, deflate, br, zstd"})
#: CompressionMiddleware's default level per coding; every variant of a case uses the same.
LEVELS = {"gzip": 6, "br": 4, "zstd": 3}
DECODE: dict[str, Callable[[bytes], bytes]] = {
    "gzip": gzip.decompress,
    "br": brotli.decompress,
    "zstd": zstd.decompress,
}
RAW: dict[str, Callable[[bytes, int], bytes]] = {
    "gzip": lambda body, level: zlib.compress(body, level, 31),
    "br": lambda body, level: brotli.compress(body, quality=level),
    "zstd": lambda body, level: zstd.compress(body, level),
}


def json_body(size: int, seed: int = 7) -> bytes:
    """A realistic API payload: records with ids, names, numbers and flags, cut to ``size``."""
    rng = random.Random(seed)
    words = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india"]
    records = []
    total = 0
    while total < size:
        records.append(
            {
                "id": rng.randrange(10**9),
                "name": " ".join(rng.choices(words, k=3)),
                "email": f"{rng.choice(words)}.{rng.randrange(10**4)}@example.com",
                "score": round(rng.random() * 100, 3),
                "active": rng.random() < 0.5,
                "tags": rng.sample(words, 2),
            }
        )
        total += len(json.dumps(records[-1])) + 2
    text = json.dumps(records).encode()
    return text[:size]


def raw_compressor(body: bytes, coding: str, level: int, *, thread: bool = False) -> ASGIApp:
    """The physical limit: the app compresses its body itself with one call, no middleware;
    with ``thread``, in a worker thread, as any compression that keeps the loop free must."""
    compress = RAW[coding]

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if thread:
            out = await anyio.to_thread.run_sync(compress, body, level)
        else:
            out = compress(body, level)
        headers = [
            (b"content-type", b"application/json"),
            (b"content-encoding", coding.encode()),
            (b"content-length", str(len(out)).encode()),
        ]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": out})

    return app


def _check_identity(label: str, messages: list[Message]) -> None:
    headers = dict(messages[0]["headers"])
    body = b"".join(m.get("body", b"") for m in messages[1:])
    if b"content-encoding" in headers or body != b"ok":
        raise AssertionError(f"{label} changed a 2-byte body: {messages}")


def _check_encoded(coding: str, body: bytes) -> Callable[[str, list[Message]], None]:
    def check(label: str, messages: list[Message]) -> None:
        headers = dict(messages[0]["headers"])
        if headers.get(b"content-encoding") != coding.encode():
            raise AssertionError(f"{label} did not encode with {coding}: {messages[0]}")
        if DECODE[coding](b"".join(m.get("body", b"") for m in messages[1:])) != body:
            raise AssertionError(f"{label} sent a body that does not decode to the original")

    return check


def _peers(app: ASGIApp, coding: str, level: int) -> dict[str, ASGIApp]:
    if coding == "gzip":
        return {
            "starlette GZip": StarletteGZip(app, compresslevel=level),
            "starlette-compress": CompressMiddleware(
                app, zstd=False, brotli=False, gzip_level=level
            ),
        }
    if coding == "br":
        return {
            "brotli-asgi": BrotliMiddleware(app, quality=level, gzip_fallback=False),
            "starlette-compress": CompressMiddleware(
                app, zstd=False, gzip=False, brotli_quality=level
            ),
        }
    return {
        "starlette-compress": CompressMiddleware(app, brotli=False, gzip=False, zstd_level=level)
    }


def cases() -> list[Case]:
    tiny = respond_with(b"ok", [(b"content-type", b"text/plain")])
    result = [
        Case(
            "compression",
            "2-byte response (below minimum_size)",
            {
                "middlewares": CompressionMiddleware(tiny),
                "middlewares GZip": GZipMiddleware(tiny),
                "pass-through (floor)": PassThrough(tiny),
                "starlette-compress": CompressMiddleware(tiny),
                "brotli-asgi": BrotliMiddleware(tiny),
                "starlette GZip": StarletteGZip(tiny),
            },
            scope=ACCEPT,
            baseline="starlette GZip",
            check=_check_identity,
        )
    ]
    for size, label in ((16 * 1024, "16 KiB"), (1024 * 1024, "1 MiB")):
        body = json_body(size)
        app = respond_with(body, [(b"content-type", b"application/json")])
        for coding, level in LEVELS.items():
            variants: dict[str, ASGIApp] = {
                "middlewares": CompressionMiddleware(app, encodings=(coding,), **_level(coding)),
                **_peers(app, coding, level),
                f"raw {coding} call": raw_compressor(body, coding, level),
            }
            if size >= 64 * 1024:  # CompressionMiddleware's default thread_minimum_size
                variants[f"raw {coding} call in a thread"] = raw_compressor(
                    body, coding, level, thread=True
                )
            result.append(
                Case(
                    "compression",
                    f"{label} JSON, {coding} level {level}",
                    variants,
                    scope=ACCEPT,
                    baseline=f"raw {coding} call",
                    check=_check_encoded(coding, body),
                )
            )
    return result


def _level(coding: str) -> dict[str, int]:
    name = {"gzip": "gzip_level", "br": "brotli_quality", "zstd": "zstd_level"}[coding]
    return {name: LEVELS[coding]}
