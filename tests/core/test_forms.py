"""The streaming form-field scanner: urlencoded and multipart bodies fed in any chunking."""

from __future__ import annotations

import urllib.parse

import pytest
from hypothesis import given
from hypothesis import strategies as st

from middlewares._core.forms import field_scanner

BOUNDARY = b"----WebKitFormBoundary7MA4YWxkTrZu0gW"
MULTIPART = b"multipart/form-data; boundary=" + BOUNDARY
URLENCODED = b"application/x-www-form-urlencoded"


def multipart(*parts: tuple[bytes, bytes]) -> bytes:
    """A body as browsers build it: each part is (Content-Disposition parameters, content)."""
    body = b""
    for disposition, content in parts:
        body += b"--" + BOUNDARY + b"\r\n"
        body += b"Content-Disposition: form-data; " + disposition + b"\r\n"
        if b"filename" in disposition:
            body += b"Content-Type: application/octet-stream\r\n"
        body += b"\r\n" + content + b"\r\n"
    return body + b"--" + BOUNDARY + b"--\r\n"


def scan(content_type: bytes, body: bytes, chunks: list[int] | None = None) -> bytes | None:
    scanner = field_scanner(content_type, b"csrftoken", max_value=256)
    assert scanner is not None
    cuts = sorted({0, len(body), *(c % (len(body) + 1) for c in chunks or [])})
    found = None
    for start, end in zip(cuts, cuts[1:] or [len(body)], strict=False):
        found = scanner.feed(body[start:end], final=end == len(body))
        if found is not None:
            break
    if len(cuts) == 1:
        found = scanner.feed(b"", final=True)
    return found


@pytest.mark.parametrize(
    ("content_type", "body", "expected"),
    [
        pytest.param(URLENCODED, b"a=1&csrftoken=abc&b=2", b"abc", id="urlencoded in the middle"),
        pytest.param(URLENCODED, b"csrftoken=abc", b"abc", id="urlencoded as the only field"),
        pytest.param(URLENCODED, b"csrf%74oken=a%2Bb+c", b"a+b c", id="urlencoded escapes"),
        pytest.param(URLENCODED, b"a=1&b=2", None, id="urlencoded without the field"),
        pytest.param(URLENCODED, b"csrftokenx=1&xcsrftoken=2", None, id="urlencoded near names"),
        pytest.param(URLENCODED, b"csrftoken=1&csrftoken=2", b"1", id="urlencoded first wins"),
        pytest.param(
            URLENCODED, b"csrftoken=" + b"x" * 5000 + b"&csrftoken=ok", b"ok", id="too long skipped"
        ),
        pytest.param(
            b"Application/X-WWW-Form-Urlencoded; charset=utf-8",
            b"csrftoken=abc",
            b"abc",
            id="urlencoded media type in any case",
        ),
        pytest.param(
            MULTIPART,
            multipart((b'name="csrftoken"', b"tok"), (b'name="a"', b"1")),
            b"tok",
            id="multipart first part",
        ),
        pytest.param(
            MULTIPART,
            multipart(
                (b'name="file"; filename="a.bin"', b"\0" * 1000), (b'name="csrftoken"', b"t")
            ),
            b"t",
            id="multipart after a file part",
        ),
        pytest.param(
            MULTIPART,
            multipart((b'name="csrftoken"; filename="x"', b"tok")),
            None,
            id="a file named like the field is not the field",
        ),
        pytest.param(
            MULTIPART,
            multipart((b'name="a"', b"--" + BOUNDARY + b"x\r\n"), (b'name="csrftoken"', b"t")),
            b"t",
            id="boundary-like text inside a part",
        ),
        pytest.param(
            b'multipart/form-data; boundary="' + BOUNDARY + b'"',
            multipart((b'name="csrftoken"', b"tok")),
            b"tok",
            id="quoted boundary",
        ),
        pytest.param(
            MULTIPART,
            multipart((b'name="csrftoken"', b"x" * 300), (b'name="csrftoken"', b"ok")),
            b"ok",
            id="multipart value too long skipped",
        ),
        pytest.param(
            MULTIPART,
            b"--" + BOUNDARY + b"\r\n\r\nheaderless\r\n--" + BOUNDARY + b"--",
            None,
            id="a part without headers",
        ),
        pytest.param(MULTIPART, b"--" + BOUNDARY + b"--\r\n", None, id="an empty form"),
        pytest.param(
            MULTIPART,
            b"--" + BOUNDARY + b"\r\nContent-Type: text/plain\r\n\r\nx\r\n--" + BOUNDARY + b"--",
            None,
            id="a part without Content-Disposition",
        ),
    ],
)
@pytest.mark.parametrize("chunk", [None, 1, 7], ids=["whole", "byte by byte", "7-byte chunks"])
def test_scanner_finds_the_field(
    content_type: bytes, body: bytes, expected: bytes | None, chunk: int | None
) -> None:
    cuts = None if chunk is None else list(range(0, len(body), chunk))
    assert scan(content_type, body, cuts) == expected


@pytest.mark.parametrize(
    "content_type",
    [
        pytest.param(b"application/json", id="json"),
        pytest.param(b"multipart/form-data", id="multipart without boundary"),
        pytest.param(b"multipart/form-data; boundary=" + b"x" * 71, id="boundary over 70"),
        pytest.param(b"", id="no content type"),
    ],
)
def test_scanner_is_none_for_bodies_that_are_not_forms(content_type: bytes) -> None:
    assert field_scanner(content_type, b"csrftoken", max_value=256) is None


def test_a_found_value_is_kept_whatever_comes_next() -> None:
    scanner = field_scanner(URLENCODED, b"csrftoken", max_value=256)
    assert scanner is not None
    assert scanner.feed(b"csrftoken=abc&") == b"abc"
    assert scanner.feed(b"csrftoken=other", final=True) == b"abc"


@pytest.mark.parametrize(
    "junk",
    [
        pytest.param(b"\r\nX-Junk: " + b"a" * 10000 + b"\r\n\r\nv\r\n", id="huge part headers"),
        pytest.param(b"junk" + b"j" * 9000 + b"\r\n", id="a delimiter line with junk after it"),
    ],
)
def test_what_no_browser_sends_is_skipped_and_the_field_still_found(junk: bytes) -> None:
    body = (
        b"--"
        + BOUNDARY
        + junk
        + b"--"
        + BOUNDARY
        + b'\r\nContent-Disposition: form-data; name="csrftoken"\r\n\r\nt\r\n'
        b"--" + BOUNDARY + b"--"
    )
    assert scan(MULTIPART, body, list(range(0, len(body), 100))) == b"t"


def test_skipping_a_large_file_keeps_only_a_delimiter_of_look_behind() -> None:
    scanner = field_scanner(MULTIPART, b"csrftoken", max_value=256)
    assert scanner is not None
    scanner.feed(b"--" + BOUNDARY + b'\r\nContent-Disposition: form-data; name="f"\r\n\r\n')
    for _ in range(100):
        assert scanner.feed(b"\xff" * 65536) is None
    assert len(scanner._buffer) < 2 * len(BOUNDARY)  # type: ignore[attr-defined]
    rest = b"\r\n--" + BOUNDARY + b'\r\nContent-Disposition: form-data; name="csrftoken"\r\n\r\n'
    assert scanner.feed(rest + b"tok\r\n--" + BOUNDARY + b"--", final=True) == b"tok"


@given(
    fields=st.lists(st.tuples(st.text(min_size=1, max_size=10), st.text(max_size=40)), max_size=6),
    token=st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-_.", max_size=60),
    position=st.integers(min_value=0, max_value=6),
    cuts=st.lists(st.integers(min_value=0, max_value=10_000), max_size=8),
)
def test_urlencoded_round_trip_under_any_chunking(
    fields: list[tuple[str, str]], token: str, position: int, cuts: list[int]
) -> None:
    others = [(name, value) for name, value in fields if name != "csrftoken"]
    others.insert(min(position, len(others)), ("csrftoken", token))
    body = urllib.parse.urlencode(others).encode("ascii")
    assert scan(URLENCODED, body, cuts) == token.encode()


@given(
    sizes=st.lists(st.integers(min_value=0, max_value=3000), max_size=4),
    token=st.binary(max_size=60).filter(lambda b: b"\r\n--" not in b),
    cuts=st.lists(st.integers(min_value=0, max_value=20_000), max_size=8),
)
def test_multipart_round_trip_under_any_chunking(
    sizes: list[int], token: bytes, cuts: list[int]
) -> None:
    parts = [
        (b'name="f%d"; filename="f.bin"' % i, bytes(range(256)) * (n // 256))
        for i, n in enumerate(sizes)
    ]
    body = multipart(*parts, (b'name="csrftoken"', token))
    assert scan(MULTIPART, body, cuts) == token


@given(
    body=st.binary(max_size=2000),
    cuts=st.lists(st.integers(min_value=0, max_value=2000), max_size=6),
    content_type=st.sampled_from([URLENCODED, MULTIPART]),
)
def test_arbitrary_bytes_never_raise_and_chunking_never_changes_the_answer(
    body: bytes, cuts: list[int], content_type: bytes
) -> None:
    assert scan(content_type, body, cuts) == scan(content_type, body)
