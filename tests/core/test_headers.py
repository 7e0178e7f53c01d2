from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from middlewares._core import headers as headers_module
from middlewares._core.headers import (
    append_header,
    get_all,
    get_header,
    get_list,
    is_token,
    merge_vary,
    mutable_headers,
    parse_weighted,
    remove_header,
    set_header,
    split_list,
)

HEADERS = [
    (b"Content-Type", b"text/html"),
    (b"set-cookie", b"a=1"),
    (b"vary", b"Accept-Encoding"),
    (b"Set-Cookie", b"b=2"),
]

header_lists = st.lists(st.tuples(st.binary(max_size=12), st.binary(max_size=20)), max_size=8)


def test_lookup_is_case_insensitive_and_ordered() -> None:
    assert get_header(HEADERS, b"content-type") == b"text/html"
    assert get_header(HEADERS, b"etag") is None
    assert get_all(HEADERS, b"set-cookie") == [b"a=1", b"b=2"]


def test_set_replaces_every_field_in_place_of_the_first() -> None:
    headers = mutable_headers(HEADERS)
    set_header(headers, b"set-cookie", b"c=3")
    assert headers == [
        (b"Content-Type", b"text/html"),
        (b"set-cookie", b"c=3"),
        (b"vary", b"Accept-Encoding"),
    ]


def test_set_appends_a_missing_field() -> None:
    headers: list[tuple[bytes, bytes]] = []
    set_header(headers, b"etag", b'"x"')
    assert headers == [(b"etag", b'"x"')]


def test_remove_and_append() -> None:
    headers = mutable_headers(HEADERS)
    remove_header(headers, b"set-cookie")
    append_header(headers, b"set-cookie", b"z=9")
    assert get_all(headers, b"set-cookie") == [b"z=9"]
    assert len(headers) == 3


def test_mutable_headers_leaves_the_original_alone() -> None:
    original = ((b"a", b"1"),)
    copy = mutable_headers(original)
    set_header(copy, b"a", b"2")
    assert original == ((b"a", b"1"),)


@pytest.mark.parametrize(
    ("value", "members"),
    [
        pytest.param(b"gzip, br", [b"gzip", b"br"], id="plain list"),
        pytest.param(b" a, ,b ,", [b"a", b"b"], id="empty members and spaces dropped"),
        pytest.param(b"", [], id="empty field"),
        pytest.param(b",,,", [], id="only commas"),
        pytest.param(b"x-foo,\tx-bar", [b"x-foo", b"x-bar"], id="tab is whitespace"),
    ],
)
def test_split_list(value: bytes, members: list[bytes]) -> None:
    assert split_list(value) == members


def test_get_list_joins_repeated_fields() -> None:
    assert get_list([(b"vary", b"a, b"), (b"Vary", b"c,")], b"vary") == [b"a", b"b", b"c"]


@pytest.mark.parametrize(
    ("values", "parsed"),
    [
        pytest.param([b"gzip, br;q=0.5"], [(b"gzip", 1.0), (b"br", 0.5)], id="default weight"),
        pytest.param([b"GZip;Q=0"], [(b"gzip", 0.0)], id="case folded"),
        pytest.param([b"gzip;q=1.000, *;q=0.001"], [(b"gzip", 1.0), (b"*", 0.001)], id="bounds"),
        pytest.param([b"gzip;q=1.5, br;q=abc, zstd;q=0.5"], [(b"zstd", 0.5)], id="bad q dropped"),
        pytest.param([b"gzip;q=0.0001"], [], id="too many digits dropped"),
        pytest.param([b"gzip ; level=1 ; q=0.3"], [(b"gzip", 0.3)], id="other params"),
        pytest.param([b"br", b"gzip"], [(b"br", 1.0), (b"gzip", 1.0)], id="repeated fields"),
        pytest.param([b"g zip, (x)"], [], id="non-token dropped"),
    ],
)
def test_parse_weighted(values: list[bytes], parsed: list[tuple[bytes, float]]) -> None:
    assert parse_weighted(values) == parsed


@pytest.mark.parametrize(
    ("existing", "added", "result"),
    [
        pytest.param([], (b"Origin",), b"Origin", id="new field"),
        pytest.param(
            [(b"vary", b"Accept-Encoding")],
            (b"Origin",),
            b"Accept-Encoding, Origin",
            id="kept and extended",
        ),
        pytest.param([(b"Vary", b"origin")], (b"Origin",), b"origin", id="case-insensitive set"),
        pytest.param(
            [(b"vary", b"a"), (b"vary", b"b, a")], (b"c",), b"a, b, c", id="fields folded"
        ),
        pytest.param([(b"vary", b"*")], (b"Origin",), b"*", id="star absorbs"),
    ],
)
def test_merge_vary(
    existing: list[tuple[bytes, bytes]], added: tuple[bytes, ...], result: bytes
) -> None:
    headers = [(b"content-type", b"text/plain"), *existing]
    merge_vary(headers, *added)
    assert get_all(headers, b"vary") == [result]
    assert headers[0] == (b"content-type", b"text/plain")


def test_merge_vary_with_nothing_adds_nothing() -> None:
    headers: list[tuple[bytes, bytes]] = []
    merge_vary(headers)
    assert headers == []


def test_merge_vary_stays_right_past_its_cache_of_merged_values() -> None:
    # An app that varies on generated names must not grow memory or get stale merges.
    for round_ in range(2):
        for number in range(700):
            headers = [(b"vary", b"X-Variant-%d" % number)]
            merge_vary(headers, b"Origin")
            assert headers == [(b"vary", b"X-Variant-%d, Origin" % number)], round_
    assert len(headers_module._merged_vary) <= headers_module._VARY_CACHE_SIZE


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("app", True),
        (b"x-request-id", True),
        ("", False),
        ("a b", False),
        ("é", False),
        ("a;", False),
    ],
)
def test_is_token(value: str | bytes, expected: bool) -> None:
    assert is_token(value) is expected


@given(st.lists(st.binary(max_size=40), max_size=4))
def test_parse_weighted_never_raises(values: list[bytes]) -> None:
    for token, weight in parse_weighted(values):
        assert is_token(token)
        assert token == token.lower()
        assert 0.0 <= weight <= 1.0


@given(st.binary(max_size=60))
def test_split_list_members_are_trimmed_and_non_empty(value: bytes) -> None:
    for member in split_list(value):
        assert member
        assert member == member.strip(b" \t")
        assert b"," not in member


@given(header_lists, st.lists(st.sampled_from([b"Origin", b"accept-encoding", b"Cookie"])))
def test_merge_vary_is_a_token_set(headers: list[tuple[bytes, bytes]], names: list[bytes]) -> None:
    before = {m.lower() for m in get_list(headers, b"vary")}
    merge_vary(headers, *names)
    after = [m.lower() for m in get_list(headers, b"vary")]
    assert len(after) == len(set(after))
    if b"*" not in before | {n.lower() for n in names}:
        assert set(after) == before | {n.lower() for n in names}
    assert len(get_all(headers, b"vary")) <= 1


@given(header_lists, st.binary(max_size=8), st.binary(max_size=8))
def test_set_then_get_round_trips(
    headers: list[tuple[bytes, bytes]], name: bytes, value: bytes
) -> None:
    name = name.lower()
    set_header(headers, name, value)
    assert get_all(headers, name) == [value]
