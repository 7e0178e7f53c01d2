"""The codec adapters: every chunking of every body round-trips, zstd windows stay within
RFC 9659, decoders bound their output and reject corrupt or trailing data."""

from __future__ import annotations

import concurrent.futures
import gzip
import zlib

import brotli
import pytest
from backports import zstd
from hypothesis import given
from hypothesis import strategies as st

from middlewares._core.codecs import (
    ZSTD_WINDOW_LOG_MAX,
    BrotliCodec,
    Codec,
    DecodeError,
    Decoder,
    GzipCodec,
    ZstdCodec,
    make_codec,
)

CODECS = [
    pytest.param(GzipCodec(6), id="gzip"),
    pytest.param(BrotliCodec(4), id="br"),
    pytest.param(ZstdCodec(3), id="zstd"),
]
TEXT = b"".join(b'{"id": %d, "name": "user %d", "active": true}\n' % (i, i) for i in range(4000))


def decode_all(decoder: Decoder, data: bytes, max_length: int = 4096) -> bytes:
    out = [decoder.decode(data, max_length)]
    while not decoder.needs_input:
        out.append(decoder.decode(b"", max_length))
    return b"".join(out)


def third_party_decode(name: bytes, data: bytes) -> bytes:
    if name == b"gzip":
        return gzip.decompress(data)
    if name == b"br":
        return bytes(brotli.decompress(data))
    return bytes(zstd.decompress(data))


@pytest.mark.parametrize("codec", CODECS)
@given(body=st.binary(max_size=5000), cuts=st.lists(st.integers(0, 5000), max_size=8))
def test_any_chunking_round_trips_through_reference_decoders(
    codec: Codec, body: bytes, cuts: list[int]
) -> None:
    points = sorted({min(c, len(body)) for c in cuts})
    pieces = [body[a:b] for a, b in zip([0, *points], [*points, len(body)], strict=True)]
    encoder = codec.encoder()
    stream = b"".join(encoder.compress(piece) for piece in pieces[:-1]) + encoder.finish(pieces[-1])
    assert third_party_decode(codec.name, stream) == body
    assert third_party_decode(codec.name, codec.compress(body)) == body
    assert decode_all(codec.decoder(), stream) == body


@pytest.mark.parametrize("codec", CODECS)
def test_each_flush_makes_everything_so_far_decodable(codec: Codec) -> None:
    encoder = codec.encoder()
    decoder = codec.decoder()
    for event in (b"data: one\n\n", b"data: two\n\n", b"data: three\n\n"):
        # What a browser sees after each message, before the stream ends.
        assert decode_all(decoder, encoder.compress(event)) == event
    assert decode_all(decoder, encoder.finish(b"")) == b""
    assert decoder.finished


@pytest.mark.parametrize("codec", CODECS)
def test_decoders_bound_their_output_per_call(codec: Codec) -> None:
    bomb = codec.compress(b"\0" * (8 * 1024 * 1024))
    decoder = codec.decoder()
    sizes = [len(decoder.decode(bomb, 1000))]
    while not decoder.needs_input:
        sizes.append(len(decoder.decode(b"", 1000)))
    # brotli rounds the limit up to its internal buffer (32 KiB); never more than that.
    assert max(sizes) <= 64 * 1024
    assert sum(sizes) == 8 * 1024 * 1024


@pytest.mark.parametrize("codec", CODECS)
def test_corrupt_data_raises_decode_error(codec: Codec) -> None:
    with pytest.raises(DecodeError, match=codec.name.decode()):
        decode_all(codec.decoder(), b"this is not compressed at all" * 10)


@pytest.mark.parametrize("codec", CODECS)
def test_truncated_stream_is_not_finished(codec: Codec) -> None:
    data = codec.compress(TEXT)
    decoder = codec.decoder()
    decode_all(decoder, data[: len(data) // 2])
    assert not decoder.finished


@pytest.mark.parametrize("codec", [CODECS[0], CODECS[2]])
def test_concatenated_members_and_frames_decode_as_one_body(codec: Codec) -> None:
    # RFC 1952 §2.2 and RFC 8878 §3.1: a body may be several gzip members or zstd frames.
    decoder = codec.decoder()
    assert decode_all(decoder, codec.compress(b"first ") + codec.compress(b"second")) == (
        b"first second"
    )
    assert decoder.finished


def test_brotli_rejects_bytes_after_the_end_of_the_stream() -> None:
    codec = BrotliCodec(4)
    decoder = codec.decoder()
    decode_all(decoder, codec.compress(b"body"))
    with pytest.raises(DecodeError, match="after the end"):
        decoder.decode(b"trailing", 100)


def test_gzip_streams_are_one_member_with_sync_flushes() -> None:
    # A single member (not one per chunk, Django's async-streaming bug): one gzip header.
    encoder = GzipCodec(6).encoder()
    stream = encoder.compress(b"a" * 100) + encoder.compress(b"b" * 100) + encoder.finish(b"")
    assert stream.count(b"\x1f\x8b\x08") == 1
    assert zlib.decompress(stream, 31) == b"a" * 100 + b"b" * 100


def zstd_window_fits_8mb(data: bytes) -> bool:
    """Decode as Chromium does: frames needing a window above 8 MB are refused."""
    decoder = zstd.ZstdDecompressor(
        options={zstd.DecompressionParameter.window_log_max: ZSTD_WINDOW_LOG_MAX}
    )
    try:
        decoder.decompress(data)
    except zstd.ZstdError:
        return False
    return True


@pytest.mark.parametrize("level", [1, 3, 19, 20, 22])
def test_zstd_window_never_exceeds_8mb_at_any_level(level: int) -> None:
    body = bytes(range(256)) * (48 * 1024)  # 12 MiB, bigger than any capped window
    codec = ZstdCodec(level)
    encoder = codec.encoder()
    streamed = encoder.compress(body[: 6 << 20]) + encoder.finish(body[6 << 20 :])
    assert zstd_window_fits_8mb(streamed)
    assert zstd_window_fits_8mb(codec.compress(body[: 1 << 20]))


def test_uncapped_zstd_at_level_22_would_break_browsers() -> None:
    # The trap the cap avoids (starlette-compress at level >= 20): proves the check can fail.
    encoder = zstd.ZstdCompressor(level=22)
    stream = encoder.compress(b"x" * 100, zstd.ZstdCompressor.FLUSH_BLOCK)
    assert not zstd_window_fits_8mb(stream + encoder.flush())


def test_zstd_pledged_size_is_recorded_in_the_frame() -> None:
    encoder = ZstdCodec(3).encoder(len(TEXT))
    stream = encoder.compress(TEXT[:1000]) + encoder.finish(TEXT[1000:])
    assert zstd.get_frame_info(stream).decompressed_size == len(TEXT)


def test_zstd_decoder_refuses_windows_above_8mb() -> None:
    encoder = zstd.ZstdCompressor(level=22)
    data = encoder.compress(b"x" * 100) + encoder.flush()
    with pytest.raises(DecodeError, match="zstd"):
        decode_all(ZstdCodec(3).decoder(), data)


@pytest.mark.parametrize(
    ("coding", "level", "message"),
    [
        pytest.param(
            "gzip", 0, "gzip_level must be an integer between 1 and 9, got 0", id="gzip 0"
        ),
        pytest.param("gzip", 10, "between 1 and 9, got 10", id="gzip 10"),
        pytest.param("br", 12, "between 0 and 11, got 12", id="br 12"),
        pytest.param("zstd", 23, "between 1 and 22, got 23", id="zstd 23"),
        pytest.param("zstd", True, "got True", id="a bool is not a level"),
        pytest.param("gzip", "6", "got '6'", id="a string is not a level"),
        pytest.param("deflate", 6, "unknown content coding 'deflate'", id="unknown coding"),
    ],
)
def test_make_codec_validates_levels(coding: str, level: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make_codec(coding, level, argument="gzip_level")


@pytest.mark.parametrize(
    ("coding", "level", "kind"),
    [("gzip", 1, GzipCodec), ("br", 0, BrotliCodec), ("zstd", 22, ZstdCodec)],
)
def test_make_codec_builds_each_coding(coding: str, level: int, kind: type) -> None:
    codec = make_codec(coding, level, argument="level")
    assert isinstance(codec, kind)
    assert codec.name == coding.encode()


def test_zstd_one_shot_frames_stay_whole_when_threads_share_the_codec() -> None:
    # Idle zstd contexts are reused across responses and worker threads: each frame must still
    # decode to its own body and record its own content size.
    codec = ZstdCodec(3)
    bodies = [TEXT[: 1000 * n] + b"%d" % n for n in range(1, 41)]
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        frames = list(pool.map(codec.compress, bodies))
    for body, frame in zip(bodies, frames, strict=True):
        assert zstd.decompress(frame) == body
        assert zstd.get_frame_info(frame).decompressed_size == len(body)


def test_zstd_decoder_at_the_end_of_a_frame_returns_nothing_more() -> None:
    decoder = make_codec("zstd", 3, argument="zstd_level").decoder()
    assert decoder.decode(zstd.compress(b"whole body"), 1024) == b"whole body"
    assert decoder.finished
    assert decoder.decode(b"", 1024) == b""
    assert decoder.finished
