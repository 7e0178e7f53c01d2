"""HTTP content codings (RFC 9110 §8.4.1): gzip (RFC 1952), br (RFC 7932), zstd (RFC 8878 with
the RFC 9659 window limit), as streaming encoders with flush points and bounded decoders."""

from __future__ import annotations

import sys
import zlib
from typing import Any, Protocol

__all__ = [
    "CODINGS",
    "ZSTD_WINDOW_LOG_MAX",
    "BrotliCodec",
    "Codec",
    "DecodeError",
    "Decoder",
    "Encoder",
    "GzipCodec",
    "ZstdCodec",
    "make_codec",
]

#: RFC 9659 §3: a zstd frame sent over HTTP must not need a window above 8 MB (2**23), and
#: browsers refuse larger ones (Chromium: ERR_ZSTD_WINDOW_SIZE_TOO_BIG).
ZSTD_WINDOW_LOG_MAX = 23
#: The content codings this module implements, by their RFC 9110 §16.6 registry names.
CODINGS = ("zstd", "br", "gzip")

# zstd's level table (lib/compress/clevels.h): levels 20 to 22 use windows of 2**25 to 2**27;
# level 19 and below stay at 2**23 or less.
_ZSTD_FIRST_LEVEL_OVER_8MB = 20
# Idle zstd contexts kept per codec for one-shot bodies: the loop's thread and a few workers.
_ZSTD_IDLE_CONTEXTS = 4
# RFC 1952 gzip framing through zlib: 16 + the largest window (2**15).
_GZIP_WBITS = 31


class DecodeError(ValueError):
    """A request body is not valid data for its declared content coding."""


class Encoder(Protocol):
    """One response body being encoded; used by one request at a time, from any thread."""

    def compress(self, data: bytes) -> bytes:
        """Encode ``data`` and flush, so that everything given so far decodes at the client."""
        ...

    def finish(self, data: bytes) -> bytes:
        """Encode the last ``data`` and end the stream."""
        ...


class Decoder(Protocol):
    """One request body being decoded, with output bounded per call."""

    def decode(self, data: bytes, max_length: int) -> bytes:
        """Feed ``data`` and return at most ``max_length`` decoded bytes.

        When output was cut short, ``needs_input`` is False: call again with ``b""`` for more.

        Raises:
            DecodeError: the data is corrupt, or continues after the end of the stream.
        """
        ...

    @property
    def needs_input(self) -> bool:
        """Whether all input given so far was decoded and returned."""
        ...

    @property
    def finished(self) -> bool:
        """Whether the input so far ends exactly at the end of a complete stream."""
        ...


class Codec(Protocol):
    """A content coding at one setting: makes encoders and decoders, compresses in one call."""

    #: The coding's token as it appears in Content-Encoding, e.g. ``b"gzip"``.
    name: bytes

    def compress(self, body: bytes) -> bytes:
        """Encode a whole body in one call (the fastest path for one-shot responses)."""
        ...

    def encoder(self, size: int | None = None) -> Encoder:
        """Start a stream; ``size`` is the total input length when known in advance."""
        ...

    def decoder(self) -> Decoder:
        """Start decoding a stream."""
        ...


# -- gzip -------------------------------------------------------------------------------------


class _GzipEncoder:
    __slots__ = ("_zlib",)

    def __init__(self, level: int) -> None:
        self._zlib = zlib.compressobj(level, zlib.DEFLATED, _GZIP_WBITS)

    def compress(self, data: bytes) -> bytes:
        # Z_SYNC_FLUSH ends the deflate block on a byte boundary without ending the member, so
        # the client can inflate everything so far and the stream stays one gzip member.
        return self._zlib.compress(data) + self._zlib.flush(zlib.Z_SYNC_FLUSH)

    def finish(self, data: bytes) -> bytes:
        return self._zlib.compress(data) + self._zlib.flush(zlib.Z_FINISH)


class _GzipDecoder:
    __slots__ = ("_pending", "_zlib")

    def __init__(self) -> None:
        self._zlib = zlib.decompressobj(_GZIP_WBITS)
        self._pending = b""

    @property
    def needs_input(self) -> bool:
        return not self._pending

    @property
    def finished(self) -> bool:
        return self._zlib.eof and not self._pending

    def decode(self, data: bytes, max_length: int) -> bytes:
        data = self._pending + data if self._pending else data
        if self._zlib.eof and data:
            # RFC 1952 §2.2: a gzip file is a series of members; start the next one.
            self._zlib = zlib.decompressobj(_GZIP_WBITS)
        try:
            out = self._zlib.decompress(data, max_length)
        except zlib.error as error:
            raise DecodeError(f"invalid gzip data: {error}") from error
        self._pending = self._zlib.unconsumed_tail or self._zlib.unused_data
        return out


class GzipCodec:
    """gzip (RFC 1952) through zlib.

    Args:
        level: zlib compression level, 1 (fastest) to 9 (smallest).
    """

    __slots__ = ("level",)
    name = b"gzip"

    def __init__(self, level: int) -> None:
        self.level = level

    if sys.version_info >= (3, 11):

        def compress(self, body: bytes) -> bytes:
            return zlib.compress(body, self.level, _GZIP_WBITS)

    else:  # pragma: no cover - zlib.compress takes wbits since 3.11

        def compress(self, body: bytes) -> bytes:
            compressor = zlib.compressobj(self.level, zlib.DEFLATED, _GZIP_WBITS)
            return compressor.compress(body) + compressor.flush()

    def encoder(self, size: int | None = None) -> Encoder:
        return _GzipEncoder(self.level)

    def decoder(self) -> Decoder:
        return _GzipDecoder()


# -- brotli -----------------------------------------------------------------------------------


def _import_brotli() -> Any:
    try:
        import brotli
    except ImportError as error:  # pragma: no cover - brotli is a runtime dependency
        raise ImportError("br needs the 'brotli' package: pip install brotli") from error
    return brotli


class _BrotliEncoder:
    __slots__ = ("_brotli",)

    def __init__(self, brotli: Any, quality: int, mode: int) -> None:
        self._brotli = brotli.Compressor(mode=mode, quality=quality)

    def compress(self, data: bytes) -> bytes:
        # RFC 7932 §9.2: flush emits an empty metadata block that byte-aligns the stream.
        out: bytes = self._brotli.process(data) + self._brotli.flush()
        return out

    def finish(self, data: bytes) -> bytes:
        out: bytes = self._brotli.process(data) + self._brotli.finish()
        return out


class _BrotliDecoder:
    __slots__ = ("_brotli", "_draining", "_excess")

    def __init__(self, brotli: Any) -> None:
        self._brotli = brotli.Decompressor()
        self._draining = False
        self._excess = b""

    @property
    def needs_input(self) -> bool:
        return not self._draining and not self._excess

    @property
    def finished(self) -> bool:
        return bool(self._brotli.is_finished()) and self.needs_input

    def decode(self, data: bytes, max_length: int) -> bytes:
        if data and self._brotli.is_finished():
            raise DecodeError("invalid br data: bytes after the end of the stream")
        if self._excess and not data:
            out, self._excess = self._excess[:max_length], self._excess[max_length:]
            return out
        try:
            produced: bytes = self._brotli.process(data, output_buffer_limit=max(max_length, 1))
        except Exception as error:  # brotli.error is not exported under a stable name
            raise DecodeError(f"invalid br data: {error}") from error
        out = self._excess + produced
        # A full output buffer may leave more output inside; it is drained with empty input.
        self._draining = len(out) >= max_length and not self._brotli.is_finished()
        # brotli grows its buffer in 32 KiB steps past the limit: keep the overshoot for later.
        out, self._excess = out[:max_length], out[max_length:]
        return out


class BrotliCodec:
    """Brotli (RFC 7932) through Google's ``brotli`` bindings.

    Args:
        quality: 0 (fastest) to 11 (smallest).
    """

    __slots__ = ("_brotli", "_mode", "quality")
    name = b"br"

    def __init__(self, quality: int) -> None:
        self._brotli = _import_brotli()
        self._mode = self._brotli.MODE_GENERIC
        self.quality = quality

    def compress(self, body: bytes) -> bytes:
        out: bytes = self._brotli.compress(body, mode=self._mode, quality=self.quality)
        return out

    def encoder(self, size: int | None = None) -> Encoder:
        return _BrotliEncoder(self._brotli, self.quality, self._mode)

    def decoder(self) -> Decoder:
        return _BrotliDecoder(self._brotli)


# -- zstd -------------------------------------------------------------------------------------


def _import_zstd() -> Any:
    try:
        if sys.version_info >= (3, 14):
            from compression import zstd  # type: ignore[import-not-found,unused-ignore]
        else:
            import backports.zstd as zstd
    except ImportError as error:
        raise ImportError(
            "zstd needs the 'backports.zstd' package before Python 3.14: pip install backports.zstd"
        ) from error
    return zstd


class _ZstdEncoder:
    __slots__ = ("_flush", "_frame", "_zstd")

    def __init__(self, zstd: Any, options: dict[Any, int], size: int | None) -> None:
        self._zstd = zstd.ZstdCompressor(options=options)
        if size is not None:
            # RFC 8878 §3.1.1.1.2: the frame header then records the content size.
            self._zstd.set_pledged_input_size(size)
        self._flush = zstd.ZstdCompressor.FLUSH_BLOCK
        self._frame = zstd.ZstdCompressor.FLUSH_FRAME

    def compress(self, data: bytes) -> bytes:
        out: bytes = self._zstd.compress(data, self._flush)
        return out

    def finish(self, data: bytes) -> bytes:
        out: bytes = self._zstd.compress(data, self._frame)
        return out


class _ZstdDecoder:
    __slots__ = ("_make", "_pending", "_zstd")

    def __init__(self, make: Any) -> None:
        self._make = make
        self._zstd = make()
        self._pending = b""

    @property
    def needs_input(self) -> bool:
        # After a frame ends, needs_input stays as it was on the last call.
        return bool(self._zstd.eof or self._zstd.needs_input) and not self._pending

    @property
    def finished(self) -> bool:
        return bool(self._zstd.eof) and not self._pending

    def decode(self, data: bytes, max_length: int) -> bytes:
        data = self._pending + data if self._pending else data
        self._pending = b""
        if self._zstd.eof:
            if not data:
                return b""
            # RFC 8878 §3.1: a zstd stream is a series of frames; start the next one.
            self._zstd = self._make()
        try:
            out: bytes = self._zstd.decompress(data, max_length)
        except Exception as error:  # ZstdError, or EOFError from a frame checksum
            raise DecodeError(f"invalid zstd data: {error}") from error
        if self._zstd.eof:
            self._pending = self._zstd.unused_data
        return out


class ZstdCodec:
    """Zstandard (RFC 8878) through ``compression.zstd`` (3.14+) or ``backports.zstd``.

    Whatever the level, frames never need a window above 8 MB (RFC 9659), and decoding refuses
    frames that would.

    Args:
        level: 1 (fastest) to 22 (smallest).
    """

    __slots__ = ("_frame", "_idle", "_options", "_zstd", "level")
    name = b"zstd"

    def __init__(self, level: int) -> None:
        zstd = _import_zstd()
        self._zstd = zstd
        self.level = level
        params = zstd.CompressionParameter
        self._options: dict[Any, int] = {params.compression_level: level}
        if level >= _ZSTD_FIRST_LEVEL_OVER_8MB:
            self._options[params.window_log] = ZSTD_WINDOW_LOG_MAX
        self._frame = zstd.ZstdCompressor.FLUSH_FRAME
        self._idle: list[Any] = []

    def compress(self, body: bytes) -> bytes:
        # Setting up a zstd context costs more than compressing a small body with it (18 of
        # 44 µs for 16 KiB at level 3, measured), so idle contexts are reused. A frame made in
        # one call records its content size and leaves the context ready for the next; a call
        # that raises drops its context. list.pop and append are atomic: threads may share.
        idle = self._idle
        try:
            compressor = idle.pop()
        except IndexError:
            compressor = self._zstd.ZstdCompressor(options=self._options)
        out: bytes = compressor.compress(body, self._frame)
        if len(idle) < _ZSTD_IDLE_CONTEXTS:
            idle.append(compressor)
        return out

    def encoder(self, size: int | None = None) -> Encoder:
        return _ZstdEncoder(self._zstd, self._options, size)

    def decoder(self) -> Decoder:
        zstd = self._zstd
        options = {zstd.DecompressionParameter.window_log_max: ZSTD_WINDOW_LOG_MAX}
        return _ZstdDecoder(lambda: zstd.ZstdDecompressor(options=options))


#: The valid levels of each coding, (lowest, highest).
_LEVELS = {"gzip": (1, 9), "br": (0, 11), "zstd": (1, 22)}


def make_codec(coding: str, level: int, *, argument: str) -> Codec:
    """Build the codec for ``coding`` at ``level``, validating the level.

    Raises:
        ValueError: an unknown coding, or a level outside the coding's range; the message names
            ``argument``.
        ImportError: the coding's optional package is missing.
    """
    if coding not in _LEVELS:
        raise ValueError(f"unknown content coding {coding!r}; expected one of {CODINGS}")
    low, high = _LEVELS[coding]
    if isinstance(level, bool) or not isinstance(level, int) or not low <= level <= high:
        raise ValueError(f"{argument} must be an integer between {low} and {high}, got {level!r}")
    if coding == "gzip":
        return GzipCodec(level)
    if coding == "br":
        return BrotliCodec(level)
    return ZstdCodec(level)
