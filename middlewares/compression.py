"""Content codings for HTTP bodies: responses negotiated by ``Accept-Encoding`` (RFC 9110
§12.5.3) and encoded with zstd (RFC 8878, RFC 9659), br (RFC 7932) or gzip (RFC 9110 §8.4.1.3);
request bodies decoded from their ``Content-Encoding`` (RFC 9110 §8.4, §15.5.16)."""

from __future__ import annotations

import functools
import os
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence

import anyio
import anyio.lowlevel
import anyio.to_thread

from ._core.codecs import (
    CODINGS,
    Codec,
    DecodeError,
    Decoder,
    Encoder,
    make_codec,
)
from ._core.headers import get_list, merge_vary, parse_weighted, split_list
from ._core.paths import PathMatcher, PathPattern
from ._core.respond import send_response
from ._types import ASGIApp, Message, RawHeaders, Receive, Scope, Send

__all__ = [
    "DEFAULT_EXCLUDED_CONTENT_TYPES",
    "DEFAULT_GZIP_EXCLUDED_CONTENT_TYPES",
    "DEFAULT_STREAMING_CONTENT_TYPES",
    "CompressionMiddleware",
    "GZipMiddleware",
    "RequestDecompressionMiddleware",
    "negotiate",
]

#: Media types whose bodies are already compressed (or must not be touched), so encoding them
#: again only costs CPU: raster images, audio, video, archives, WOFF fonts and gRPC (which has
#: its own message compression). ``type/*`` covers a whole top-level type.
DEFAULT_EXCLUDED_CONTENT_TYPES = (
    "application/grpc",
    "application/gzip",
    "application/x-gzip",
    "application/zip",
    "application/zstd",
    "application/x-bzip2",
    "application/x-xz",
    "application/x-7z-compressed",
    "application/vnd.rar",
    "audio/*",
    "font/woff",
    "font/woff2",
    "image/apng",
    "image/avif",
    "image/gif",
    "image/heic",
    "image/jpeg",
    "image/jxl",
    "image/png",
    "image/webp",
    "video/*",
)
#: `GZipMiddleware`'s default, as Starlette's: server-sent events are not compressed either.
DEFAULT_GZIP_EXCLUDED_CONTENT_TYPES = (*DEFAULT_EXCLUDED_CONTENT_TYPES, "text/event-stream")
#: Media types whose every message is an event the client waits for: headers go out at once and
#: each body message is compressed and flushed on its own, whatever ``minimum_size`` says.
DEFAULT_STREAMING_CONTENT_TYPES = (
    "text/event-stream",
    "application/x-ndjson",
    "application/jsonl",
    "multipart/x-mixed-replace",
)

_VARY_ACCEPT_ENCODING = b"Accept-Encoding"
_NO_TRANSFORM = b"no-transform"
_ZEROCOPYSEND = "http.response.zerocopysend"
# RFC 9110 §15.3.5, §15.3.6, §15.4.5: these responses carry no content to encode.
_NO_CONTENT = frozenset({204, 205, 304})
# Chunks at least this big are compressed in a worker thread unless configured otherwise:
# the slowest default codec handles this much in about a millisecond on one core.
_THREAD_MINIMUM_SIZE = 64 * 1024
# Request bodies are handed to the app in pieces of at most this many decoded bytes.
_DECODE_CHUNK = 64 * 1024
# A one-shot body is handed to the server in messages of at most this many bytes, so the server
# never holds a second full copy of a large body in its write buffer.
_SEND_CHUNK = 64 * 1024
# max_ratio is enforced once this many bytes were decoded: small bodies of repeated bytes
# legitimately shrink more than any sane ratio.
_RATIO_FLOOR = 1024 * 1024

_ALIASES = {b"x-gzip": b"gzip"}

_limiter: anyio.lowlevel.RunVar[anyio.CapacityLimiter] = anyio.lowlevel.RunVar(
    "middlewares.compression.limiter"
)


def _shared_limiter() -> anyio.CapacityLimiter:
    # One limiter per event loop (an anyio CapacityLimiter belongs to the loop it was made in),
    # as many tokens as cores: compression is CPU-bound, more threads only queue on the cores.
    try:
        return _limiter.get()
    except LookupError:
        limiter = anyio.CapacityLimiter(os.cpu_count() or 2)
        _limiter.set(limiter)
        return limiter


@functools.lru_cache(maxsize=512)
def negotiate(fields: tuple[bytes, ...], preference: tuple[bytes, ...]) -> bytes | None:
    """Choose the content coding for a response, or None for identity (RFC 9110 §12.5.3).

    ``fields`` are the request's Accept-Encoding field values (any number, in order);
    ``preference`` the codings the server offers, best first. A coding's weight is its own
    ``q`` if listed (``x-gzip`` counts as ``gzip``, §8.4.1.3), else the weight of ``*``, else
    0; weight 0 means "not acceptable". The heaviest acceptable coding wins and ties go to
    ``preference`` order. Identity is chosen when no field was sent (clients such as curl that
    do not ask), when nothing offered is acceptable, or when ``identity`` itself weighs more
    than the best coding. ``identity;q=0`` never turns into a 406: an unencoded response is
    still the most useful answer.
    """
    if not fields:
        return None
    weights: dict[bytes, float] = {}
    for token, weight in parse_weighted(fields):
        weights.setdefault(b"gzip" if token == b"x-gzip" else token, weight)
    star = weights.get(b"*", 0.0)
    best: bytes | None = None
    best_weight = 0.0
    for coding in preference:
        weight = weights.get(coding, star)
        if weight > best_weight:
            best, best_weight = coding, weight
    if best is not None and weights.get(b"identity", -1.0) > best_weight:
        return None
    return best


_SEEN_TYPES = 256


class _TypeMatcher:
    """Media-type membership with ``type/*`` wildcards and structured-syntax suffixes
    (``application/grpc`` also covers ``application/grpc+proto``)."""

    __slots__ = ("_exact", "_seen", "_top")

    def __init__(self, argument: str, media_types: Iterable[str]) -> None:
        if isinstance(media_types, (str, bytes)):
            raise TypeError(f"{argument} must be a sequence of media types, got {media_types!r}")
        exact: set[bytes] = set()
        top: set[bytes] = set()
        for media_type in media_types:
            base = (
                media_type.partition(";")[0].strip().lower() if isinstance(media_type, str) else ""
            )
            kind, slash, sub = base.partition("/")
            if not slash or not kind or not sub or not base.isascii():
                raise ValueError(
                    f"{argument} entries must be media types like 'image/png' or 'video/*', "
                    f"got {media_type!r}"
                )
            if sub == "*":
                top.add(kind.encode("ascii"))
            else:
                exact.add(base.encode("ascii"))
        self._exact = frozenset(exact)
        self._top = frozenset(top)
        # Answers by Content-Type value: apps send a handful of them, and parsing one costs
        # more than the lookup. Bounded against an app that puts generated values there.
        self._seen: dict[bytes, bool] = {}

    def __contains__(self, content_type: bytes) -> bool:
        seen = self._seen.get(content_type)
        if seen is None:
            if len(self._seen) >= _SEEN_TYPES:
                self._seen.clear()
            seen = self._seen[content_type] = self._matches(content_type)
        return seen

    def _matches(self, content_type: bytes) -> bool:
        base = content_type.partition(b";")[0].strip().lower()
        if base in self._exact:
            return True
        kind, _, sub = base.partition(b"/")
        if kind in self._top:
            return True
        return b"+" in sub and kind + b"/" + sub.partition(b"+")[0] in self._exact


# What the start of a response allows: untouched, or encodable (and how).
_SKIP = 0
_ENCODE = 1
_STREAM = 2


def response_plan(
    status: int,
    headers: Iterable[tuple[bytes, bytes]],
    minimum_size: int,
    excluded: _TypeMatcher,
    streaming: _TypeMatcher,
) -> tuple[int, int | None]:
    """Decide from a response's start whether its body may be encoded.

    Returns ``(plan, content_length)``; ``plan`` is ``_SKIP`` (send it untouched), ``_ENCODE``
    or ``_STREAM`` (a streaming media type: flush every message). Skipped: no content (204,
    205, 304, 1xx), partial content (206 or ``Content-Range``: RFC 9110 §14.4 ranges address
    the encoded representation), an existing non-identity ``Content-Encoding`` (never encode
    twice), ``Cache-Control: no-transform`` (RFC 9111 §5.2.2.6), excluded media types, and a
    ``Content-Length`` below ``minimum_size`` (never encoded whatever the client accepts, so
    not even ``Vary`` is needed).
    """
    if status < 200 or status in _NO_CONTENT or status == 206:
        return _SKIP, None
    length: int | None = None
    content_type: bytes | None = None
    for key, value in headers:
        name = key.lower()
        if name == b"content-length":
            length = int(value) if value.isdigit() else None
        elif name == b"content-type":
            content_type = value
        elif name == b"content-encoding":
            if any(coding.lower() != b"identity" for coding in split_list(value)):
                return _SKIP, None
        elif name == b"content-range" or (
            name == b"cache-control"
            and any(directive.lower() == _NO_TRANSFORM for directive in split_list(value))
        ):
            return _SKIP, None
    if length is not None and length < minimum_size:
        return _SKIP, length
    if content_type is None:
        return _ENCODE, length
    if content_type in excluded:
        return _SKIP, None
    return (_STREAM if content_type in streaming else _ENCODE), length


def with_vary(headers: Iterable[tuple[bytes, bytes]]) -> RawHeaders:
    """Return a copy of ``headers`` with ``Accept-Encoding`` merged into ``Vary``."""
    raw = [(k, v) for k, v in headers]
    merge_vary(raw, _VARY_ACCEPT_ENCODING)
    return raw


def encoded_headers(
    headers: Iterable[tuple[bytes, bytes]], coding: bytes, length: int | None
) -> RawHeaders:
    """Return a copy of ``headers`` describing the body encoded with ``coding``.

    ``Content-Encoding`` set (an ``identity`` one replaced), ``Content-Length`` set to
    ``length`` or dropped when None, a strong ``ETag`` made weak (RFC 9110 §8.8.3: the encoded
    bytes differ from the ones the tag was computed on), ``Accept-Encoding`` merged into
    ``Vary``.
    """
    raw: RawHeaders = []
    vary = False
    for key, value in headers:
        name = key.lower()
        if name in (b"content-length", b"content-encoding"):
            continue
        if name == b"etag" and value.startswith(b'"'):
            value = b"W/" + value
        elif name == b"vary":
            vary = True
        raw.append((key, value))
    raw.append((b"content-encoding", coding))
    if length is not None:
        raw.append((b"content-length", str(length).encode("ascii")))
    if vary:
        merge_vary(raw, _VARY_ACCEPT_ENCODING)
    else:
        raw.append((b"vary", _VARY_ACCEPT_ENCODING))
    return raw


def _check_size(argument: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{argument} must be a non-negative integer of bytes, got {value!r}")
    return value


def build_codecs(
    encodings: Sequence[str], levels: Mapping[str, int], arguments: Mapping[str, str]
) -> dict[bytes, Codec]:
    """Validate ``encodings`` and build one codec per coding, keyed by its token, in order.

    Raises:
        TypeError: ``encodings`` is a single string.
        ValueError: an unknown or repeated coding, or a level out of range.
    """
    if isinstance(encodings, (str, bytes)):
        raise TypeError(
            f"encodings must be a sequence such as ('zstd', 'br', 'gzip'), got {encodings!r}"
        )
    codecs: dict[bytes, Codec] = {}
    for coding in encodings:
        if coding not in CODINGS:
            raise ValueError(f"encodings entries must be one of {CODINGS}, got {coding!r}")
        if coding.encode("ascii") in codecs:
            raise ValueError(f"encodings lists {coding!r} twice")
        codecs[coding.encode("ascii")] = make_codec(
            coding, levels[coding], argument=arguments[coding]
        )
    return codecs


class CompressionMiddleware:
    """Encode response bodies with zstd, br or gzip, as the client's ``Accept-Encoding`` allows.

    The coding is negotiated per RFC 9110 §12.5.3 (q-values, ``*``, ``identity``, repeated
    fields; ties go to ``encodings`` order). A response is left untouched when it already has
    a ``Content-Encoding``, is partial (206, ``Content-Range``), has no content (204, 304),
    says ``Cache-Control: no-transform``, has an excluded media type, or its path is excluded.
    One-shot bodies below ``minimum_size``, or that would not shrink, go out as identity.
    Streamed bodies are held only until ``minimum_size`` bytes arrived, then every message is
    compressed and flushed at once; streaming media types (server-sent events...) start at
    once and flush each event. ``Vary: Accept-Encoding`` is merged into every response that
    could have been encoded, ``Content-Length`` is rewritten or dropped, strong ETags become
    weak, and HEAD gets the headers GET would. Large chunks are compressed in worker threads
    so the event loop never stalls.

    Args:
        app: The ASGI application to wrap.
        minimum_size: Bodies smaller than this many bytes are sent unencoded. Defaults to 500.
        encodings: The codings offered, most preferred first, out of ``"zstd"``, ``"br"`` and
            ``"gzip"``; leave one out to disable it. Defaults to ``("zstd", "br", "gzip")``.
        gzip_level: gzip level, 1 (fastest) to 9 (smallest). Defaults to 6.
        brotli_quality: Brotli quality, 0 (fastest) to 11 (smallest). Defaults to 4.
        zstd_level: Zstandard level, 1 (fastest) to 22 (smallest); the window stays at 8 MB or
            less at every level (RFC 9659). Defaults to 3.
        gzip: False turns gzip off, as starlette-compress's argument. Defaults to True.
        brotli: False turns br off, as starlette-compress's argument. Defaults to True.
        zstd: False turns zstd off (and needs no zstd module), as starlette-compress's
            argument. Defaults to True.
        remove_accept_encoding: Drop ``Accept-Encoding`` from the scope the app sees, so an
            inner layer or the app cannot encode the body a second time. Defaults to False.
        exclude_content_types: Media types never encoded (``"image/png"``, ``"video/*"``);
            ``application/grpc`` also covers ``application/grpc+proto``. Defaults to
            `DEFAULT_EXCLUDED_CONTENT_TYPES`.
        streaming_content_types: Media types flushed per message whatever their size; their
            start waits only for the first body message, which tells a one-shot body (encoded
            whole, with ``Content-Length``) from a stream and a file sent by pathsend (left
            unencoded). Defaults to `DEFAULT_STREAMING_CONTENT_TYPES`.
        exclude_paths: Request paths never encoded: ``"/health"``, ``"/files/*"`` or a compiled
            regex (see `PathMatcher`). Defaults to none.
        thread_minimum_size: Chunks at least this many bytes are compressed in a worker thread.
            Defaults to 65536.
        thread_limiter: Bounds how many chunks are compressed in threads at once; defaults to
            one limiter per event loop with one token per CPU core.

    Raises:
        ValueError: a level outside its range, an unknown or repeated coding, a negative size,
            or a malformed media type or path pattern.
        ImportError: zstd is offered but neither ``compression.zstd`` nor ``backports.zstd``
            is installed.
    """

    __slots__ = (
        "_codecs",
        "_exclude_paths",
        "_excluded",
        "_limiter",
        "_minimum_size",
        "_preference",
        "_remove_accept_encoding",
        "_streaming",
        "_thread_minimum_size",
        "app",
    )

    def __init__(
        self,
        app: ASGIApp,
        *,
        minimum_size: int = 500,
        encodings: Sequence[str] = CODINGS,
        gzip_level: int = 6,
        brotli_quality: int = 4,
        zstd_level: int = 3,
        gzip: bool = True,
        brotli: bool = True,
        zstd: bool = True,
        remove_accept_encoding: bool = False,
        exclude_content_types: Iterable[str] = DEFAULT_EXCLUDED_CONTENT_TYPES,
        streaming_content_types: Iterable[str] = DEFAULT_STREAMING_CONTENT_TYPES,
        exclude_paths: Iterable[PathPattern] = (),
        thread_minimum_size: int = _THREAD_MINIMUM_SIZE,
        thread_limiter: anyio.CapacityLimiter | None = None,
    ) -> None:
        if not isinstance(encodings, (str, bytes)):
            enabled = {"gzip": gzip, "br": brotli, "zstd": zstd}
            encodings = [coding for coding in encodings if enabled.get(coding, True)]
        self._init(
            app,
            minimum_size=minimum_size,
            encodings=encodings,
            remove_accept_encoding=remove_accept_encoding,
            levels={"gzip": gzip_level, "br": brotli_quality, "zstd": zstd_level},
            level_arguments={"gzip": "gzip_level", "br": "brotli_quality", "zstd": "zstd_level"},
            exclude_content_types=exclude_content_types,
            streaming_content_types=streaming_content_types,
            exclude_paths=exclude_paths,
            thread_minimum_size=thread_minimum_size,
            thread_limiter=thread_limiter,
        )

    def _init(
        self,
        app: ASGIApp,
        *,
        minimum_size: int,
        encodings: Sequence[str],
        remove_accept_encoding: bool = False,
        levels: dict[str, int],
        level_arguments: dict[str, str],
        exclude_content_types: Iterable[str],
        streaming_content_types: Iterable[str],
        exclude_paths: Iterable[PathPattern],
        thread_minimum_size: int,
        thread_limiter: anyio.CapacityLimiter | None,
    ) -> None:
        codecs = build_codecs(encodings, levels, level_arguments)
        self.app = app
        self._minimum_size = _check_size("minimum_size", minimum_size)
        self._thread_minimum_size = _check_size("thread_minimum_size", thread_minimum_size)
        self._codecs = codecs
        self._preference = tuple(codecs)
        self._excluded = _TypeMatcher("exclude_content_types", exclude_content_types)
        self._streaming = _TypeMatcher("streaming_content_types", streaming_content_types)
        matcher = PathMatcher(exclude_paths)
        self._exclude_paths = matcher if matcher else None
        self._limiter = thread_limiter
        self._remove_accept_encoding = remove_accept_encoding

    async def _run(self, work: Callable[[bytes], bytes], data: bytes) -> bytes:
        # Compressing a big chunk inline would stall every other request on this loop. Every
        # codec here releases the GIL while it compresses, so the loop runs meanwhile.
        if len(data) >= self._thread_minimum_size:
            return await anyio.to_thread.run_sync(
                work, data, limiter=self._limiter or _shared_limiter()
            )
        return work(data)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or (
            self._exclude_paths is not None and self._exclude_paths.matches(scope)
        ):
            await self.app(scope, receive, send)
            return
        request_headers = scope["headers"]
        extensions = scope.get("extensions")
        if (
            extensions
            and _ZEROCOPYSEND in extensions
            and self._negotiate(request_headers) is not None
        ):
            # A file sent by zero-copy would bypass the encoder once Content-Encoding is set.
            scope = {
                **scope,
                "extensions": {k: v for k, v in extensions.items() if k != _ZEROCOPYSEND},
            }
        if self._remove_accept_encoding:
            scope = {
                **scope,
                "headers": [(k, v) for k, v in request_headers if k != b"accept-encoding"],
            }
        forwarding = False  # the response goes out as the app sends it
        encoding: _Encoding | None = None  # once a response is being encoded

        # A plain function returning send's awaitable: the response start, and every message
        # of a response forwarded as is, cost no coroutine and no per-response state.
        def send_with_compression(message: Message) -> Awaitable[None]:
            nonlocal forwarding, encoding
            if forwarding:
                return send(message)
            if encoding is not None:
                return encoding.send(message)
            kind = message["type"]
            if kind != "http.response.start":
                if kind == "http.response.body":
                    raise RuntimeError("expected http.response.start before http.response.body")
                return send(message)  # early hints and other messages before the start
            plan, length = response_plan(
                message["status"],
                message.get("headers", ()),
                self._minimum_size,
                self._excluded,
                self._streaming,
            )
            if plan == _SKIP:
                forwarding = True
                return send(message)
            # Accept-Encoding is only read for a response that could be encoded.
            codec = self._negotiate(request_headers)
            if codec is None:
                forwarding = True
                return send(_identity_start(message))
            if scope.get("method") == "HEAD":
                # RFC 9110 §9.3.2: HEAD gets the header fields GET would; GET's encoded length
                # is unknown without the body, so Content-Length goes.
                forwarding = True
                return send(_encoded_start(message, codec.name, None))
            # The start waits for the first body message: only then is it known whether the body
            # is one message, a stream, or a file sent by pathsend that must stay unencoded.
            encoding = _Encoding(self, send, codec, message, length, plan == _STREAM)
            return _held()

        await self.app(scope, receive, send_with_compression)

    def _negotiate(self, request_headers: RawHeaders) -> Codec | None:
        """The codec for this request's Accept-Encoding, or None for identity."""
        fields = [v for k, v in request_headers if k == b"accept-encoding"]
        if not fields:
            return None
        chosen = negotiate(tuple(fields), self._preference)
        return None if chosen is None else self._codecs[chosen]


class _Encoding:
    """One response that could be encoded: its held start and look-ahead, then its stream
    encoder. Created only for such a response, so others pay nothing for it."""

    __slots__ = (
        "_buffered",
        "_codec",
        "_done",
        "_encoder",
        "_length",
        "_owner",
        "_send",
        "_start",
        "_streaming",
    )

    def __init__(
        self,
        owner: CompressionMiddleware,
        send: Send,
        codec: Codec,
        start: Message,
        length: int | None,
        streaming: bool,
    ) -> None:
        self._owner = owner
        self._send = send
        self._codec = codec
        self._start = start
        self._length = length
        self._streaming = streaming  # a streaming media type: no look-ahead, flush each message
        self._encoder: Encoder | None = None
        self._buffered: list[bytes] = []
        self._done = False  # the rest goes out as the app sends it

    async def send(self, message: Message) -> None:
        send = self._send
        if self._done:
            await send(message)
            return
        codec = self._codec
        if message["type"] != "http.response.body":
            if self._encoder is None:
                # pathsend, or a message this middleware does not know: the body is not ours
                # to encode, so the start goes out as the app sent it, and whatever was held
                # after it.
                self._done = True
                await send(self._start)
                if self._buffered:
                    chunk = b"".join(self._buffered)
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send(message)
            return
        body: bytes = message.get("body", b"")
        more_body: bool = message.get("more_body", False)
        run = self._owner._run
        encoder = self._encoder
        if encoder is not None:
            if more_body:
                if body:
                    chunk = await run(encoder.compress, body)
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
                return
            chunk = await run(encoder.finish, body)
            self._encoder, self._done = None, True
            await send({"type": "http.response.body", "body": chunk, "more_body": False})
            return
        held = self._start  # no encoder yet: the start is still held
        buffered = self._buffered
        if buffered:
            buffered.append(body)
            body = b"".join(buffered)
            buffered.clear()
        minimum_size = 0 if self._streaming else self._owner._minimum_size
        if more_body:
            if len(body) < minimum_size:
                # A bounded look-ahead: hold at most minimum_size bytes before deciding.
                buffered.append(body)
                return
            self._encoder = encoder = codec.encoder(self._length)
            chunk = await run(encoder.compress, body) if body else b""
            await send(_encoded_start(held, codec.name, None))
            if chunk:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            return
        self._done = True
        if len(body) < minimum_size:
            # Never encoded whatever the client accepts: the start goes out as the app sent it,
            # without Vary, as when its Content-Length already said the body was small.
            await send(held)
        else:
            compressed = await run(codec.compress, body)
            if len(compressed) < len(body):
                size = None if held.get("trailers", False) else len(compressed)
                await send(_encoded_start(held, codec.name, size))
                await _send_bounded(send, compressed)
                return
            await send(_identity_start(held))
        await _send_bounded(send, body)


async def _send_bounded(send: Send, body: bytes) -> None:
    """Send the last ``body`` of a response in messages of at most ``_SEND_CHUNK`` bytes."""
    if len(body) <= _SEND_CHUNK:
        await send({"type": "http.response.body", "body": body})
        return
    view = memoryview(body)
    for offset in range(0, len(body), _SEND_CHUNK):
        end = offset + _SEND_CHUNK
        await send(
            {
                "type": "http.response.body",
                "body": bytes(view[offset:end]),
                "more_body": end < len(body),
            }
        )


async def _held() -> None:
    """What sending a message the middleware holds back returns: a coroutine, like any send's,
    so callers may also hand it to ``create_task``."""


def _identity_start(start: Message) -> Message:
    return {**start, "headers": with_vary(start.get("headers", ()))}


def _encoded_start(start: Message, coding: bytes, size: int | None) -> Message:
    return {**start, "headers": encoded_headers(start.get("headers", ()), coding, size)}


class GZipMiddleware(CompressionMiddleware):
    """Encode response bodies with gzip: a drop-in for Starlette's ``GZipMiddleware``.

    The same engine as `CompressionMiddleware` restricted to gzip, with Starlette's argument
    names and defaults: q-values are honoured (``gzip;q=0`` means no) and streams are flushed
    per message. Server-sent events are excluded, as Starlette excludes them; to encode them
    event by event, use `CompressionMiddleware` or pass ``exclude_content_types``.

    Args:
        app: The ASGI application to wrap.
        minimum_size: Bodies smaller than this many bytes are sent unencoded. Defaults to 500.
        compresslevel: gzip level, 1 (fastest) to 9 (smallest). Defaults to 9, as Starlette's.
        thread_minimum_size: Chunks at least this many bytes are compressed in a worker thread.
            Defaults to 131072, as Starlette's.
        exclude_content_types: Media types never encoded. Defaults to
            `DEFAULT_GZIP_EXCLUDED_CONTENT_TYPES` (``text/event-stream`` included).
        streaming_content_types: Media types flushed per message whatever their size.
            Defaults to `DEFAULT_STREAMING_CONTENT_TYPES`.
        exclude_paths: Request paths never encoded. Defaults to none.
        thread_limiter: Bounds how many chunks are compressed in threads at once; defaults to
            one limiter per event loop with one token per CPU core.

    Raises:
        ValueError: ``compresslevel`` outside 1 to 9, a negative size, or a malformed media
            type or path pattern.
    """

    __slots__ = ()

    def __init__(
        self,
        app: ASGIApp,
        *,
        minimum_size: int = 500,
        compresslevel: int = 9,
        thread_minimum_size: int = 128 * 1024,
        exclude_content_types: Iterable[str] = DEFAULT_GZIP_EXCLUDED_CONTENT_TYPES,
        streaming_content_types: Iterable[str] = DEFAULT_STREAMING_CONTENT_TYPES,
        exclude_paths: Iterable[PathPattern] = (),
        thread_limiter: anyio.CapacityLimiter | None = None,
    ) -> None:
        self._init(
            app,
            minimum_size=minimum_size,
            encodings=("gzip",),
            levels={"gzip": compresslevel},
            level_arguments={"gzip": "compresslevel"},
            exclude_content_types=exclude_content_types,
            streaming_content_types=streaming_content_types,
            exclude_paths=exclude_paths,
            thread_minimum_size=thread_minimum_size,
            thread_limiter=thread_limiter,
        )


class _BodyRejected(Exception):
    """Raised from ``receive`` to unwind the app when a request body cannot be accepted."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class RequestDecompressionMiddleware:
    """Decode request bodies sent with ``Content-Encoding: zstd``, ``br`` or ``gzip``.

    The app sees the decoded body as a stream of ``http.request`` messages of at most 64 KiB
    and a scope without ``Content-Encoding`` and ``Content-Length``. Decoding stops with
    ``413 Content Too Large`` as soon as the decoded size passes ``max_size``, or the
    expansion passes ``max_ratio``, so a decompression bomb never reaches memory; corrupt or
    truncated data gets ``400 Bad Request`` and a coding it cannot decode gets ``415
    Unsupported Media Type`` with an ``Accept-Encoding`` listing what it can (RFC 9110
    §12.5.3). When the app already started its response, the body ends as if the client had
    disconnected. Requests without ``Content-Encoding`` pass through untouched.

    Args:
        app: The ASGI application to wrap.
        encodings: The codings accepted, out of ``"zstd"``, ``"br"`` and ``"gzip"``. Defaults
            to all three.
        max_size: The largest decoded body accepted, in bytes. Defaults to 10 MiB.
        max_ratio: The largest decoded/encoded size ratio accepted once more than 1 MiB was
            decoded. Defaults to 100.

    Raises:
        ValueError: an unknown or repeated coding, or a limit that is not a positive integer.
        ImportError: zstd is accepted but no zstd module is installed.
    """

    __slots__ = ("_accept_encoding", "_codecs", "_max_ratio", "_max_size", "app")

    def __init__(
        self,
        app: ASGIApp,
        *,
        encodings: Sequence[str] = CODINGS,
        max_size: int = 10 * 1024 * 1024,
        max_ratio: int = 100,
    ) -> None:
        # The level is irrelevant for decoding; any valid one builds the codec.
        codecs = build_codecs(encodings, dict.fromkeys(CODINGS, 1), dict.fromkeys(CODINGS, "level"))
        for argument, value in (("max_size", max_size), ("max_ratio", max_ratio)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{argument} must be a positive integer, got {value!r}")
        self.app = app
        self._codecs = codecs
        self._max_size = max_size
        self._max_ratio = max_ratio
        self._accept_encoding = b", ".join(codecs) if codecs else b"identity"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # RFC 9110 §8.4.1.3: x-gzip is gzip, in Content-Encoding as in Accept-Encoding.
        codings = [c.lower() for c in get_list(scope["headers"], b"content-encoding")]
        codings = [_ALIASES.get(c, c) for c in codings if c != b"identity"]
        if not codings:
            await self.app(scope, receive, send)
            return
        codec = self._codecs.get(codings[0]) if len(codings) == 1 else None
        if codec is None:
            await send_response(
                send,
                415,
                [(b"accept-encoding", self._accept_encoding)],
                b"Unsupported Content-Encoding: " + b", ".join(codings)[:100],
            )
            return
        scope = dict(scope)
        scope["headers"] = [
            (k, v)
            for k, v in scope["headers"]
            if k.lower() not in (b"content-encoding", b"content-length")
        ]
        await self._decode(scope, receive, send, codec.decoder())

    async def _decode(self, scope: Scope, receive: Receive, send: Send, decoder: Decoder) -> None:
        max_size = self._max_size
        max_ratio = self._max_ratio
        encoded = 0
        decoded = 0
        upstream_done = False
        started = False
        rejection: _BodyRejected | None = None
        replied = False

        def reject(status: int, reason: str) -> Message:
            nonlocal rejection
            rejection = _BodyRejected(status, reason)
            if started:
                # Too late for a status code: end the body the way a vanished client does.
                return {"type": "http.disconnect"}
            raise rejection

        async def receive_decoded() -> Message:
            nonlocal encoded, decoded, upstream_done
            if rejection is not None:
                return {"type": "http.disconnect"}
            while True:
                if decoder.needs_input:
                    if upstream_done:
                        if not decoder.finished and encoded:
                            return reject(400, "Truncated request body")
                        return {"type": "http.request", "body": b"", "more_body": False}
                    message = await receive()
                    if message["type"] != "http.request":
                        return message
                    data: bytes = message.get("body", b"")
                    encoded += len(data)
                    upstream_done = not message.get("more_body", False)
                else:
                    data = b""
                try:
                    chunk = decoder.decode(data, _DECODE_CHUNK)
                except DecodeError as error:
                    return reject(400, f"Malformed request body: {error}")
                decoded += len(chunk)
                if decoded > max_size or (decoded > _RATIO_FLOOR and decoded > max_ratio * encoded):
                    return reject(413, "Content Too Large")
                if upstream_done and decoder.needs_input:
                    # An empty body is an empty body, whatever its declared coding.
                    if not decoder.finished and encoded:
                        return reject(400, "Truncated request body")
                    return {"type": "http.request", "body": chunk, "more_body": False}
                if chunk:
                    return {"type": "http.request", "body": chunk, "more_body": True}

        async def send_unless_rejected(message: Message) -> None:
            nonlocal started, replied
            if rejection is not None and not started:
                # The app turned the rejected body into a response of its own (often a 500):
                # the client gets the status that says what was wrong instead.
                if not replied:
                    replied = True
                    await send_response(send, rejection.status, (), rejection.reason.encode())
                return
            if replied:
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive_decoded, send_unless_rejected)
        except _BodyRejected as error:
            if not started and not replied:
                await send_response(send, error.status, (), error.reason.encode())
