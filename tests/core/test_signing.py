from __future__ import annotations

import hmac

import itsdangerous
import pytest
from hypothesis import given
from hypothesis import strategies as st

from middlewares._core.signing import KeyRing, _Mac, b64decode, b64encode, secrets_from


def ring(*keys: str) -> KeyRing:
    return KeyRing(secrets_from("secret_key", list(keys)), salt=b"test")


def test_signed_value_verifies_and_names_the_first_key() -> None:
    assert ring("new", "old").unsign(ring("new", "old").sign(b"data")) == (b"data", 0)


def test_value_signed_with_an_old_key_verifies_and_reports_that_key() -> None:
    signed = ring("old").sign(b"data")
    assert ring("new", "old").unsign(signed) == (b"data", 1)


def test_new_key_signs_after_rotation() -> None:
    signed = ring("new", "old").sign(b"data")
    assert ring("old").unsign(signed) is None
    assert ring("new").unsign(signed) == (b"data", 0)


@pytest.mark.parametrize(
    "token",
    [
        pytest.param(b"data", id="no signature"),
        pytest.param(b"data.", id="empty signature"),
        pytest.param(b"data.!!!", id="signature not base64"),
        pytest.param(b"data.AAAA", id="wrong signature"),
        pytest.param(b"", id="empty"),
    ],
)
def test_bad_tokens_do_not_verify(token: bytes) -> None:
    assert ring("k").unsign(token) is None
    assert ring("k").unsign_itsdangerous(token) is None


def test_tampered_value_does_not_verify() -> None:
    signed = ring("k").sign(b"data")
    assert ring("k").unsign(b"date" + signed[4:]) is None


def test_salt_separates_purposes() -> None:
    signed = KeyRing([b"k"], salt=b"a").sign(b"data")
    assert KeyRing([b"k"], salt=b"b").unsign(signed) is None


def test_reads_itsdangerous_timestamp_tokens_with_any_key_of_the_ring() -> None:
    token = itsdangerous.TimestampSigner("old").sign(b"payload")
    value, timestamp, index = ring("new", "old").unsign_itsdangerous(token) or (b"", 0, -1)
    assert (value, index) == (b"payload", 1)
    _, signed_at = itsdangerous.TimestampSigner("old").unsign(token, return_timestamp=True)
    assert timestamp == int(signed_at.timestamp())


def test_itsdangerous_token_with_bad_timestamp_does_not_verify() -> None:
    assert ring("k").unsign_itsdangerous(b"payload.abcde.sig") is None


def test_itsdangerous_token_signed_with_another_key_does_not_verify() -> None:
    token = itsdangerous.TimestampSigner("other").sign(b"payload")
    assert ring("k").unsign_itsdangerous(token) is None


@given(st.binary())
def test_arbitrary_bytes_never_raise(token: bytes) -> None:
    keys = ring("k")
    assert keys.unsign(token) is None
    assert keys.unsign_itsdangerous(token) is None


@given(st.binary())
def test_base64url_round_trips(data: bytes) -> None:
    encoded = b64encode(data)
    assert b"=" not in encoded
    assert b64decode(encoded) == data


def test_b64decode_rejects_impossible_lengths() -> None:
    with pytest.raises(ValueError, match="not base64url"):
        b64decode(b"abcde")


@pytest.mark.parametrize(
    ("secret", "error", "message"),
    [
        pytest.param([], ValueError, "non-empty list", id="empty list"),
        pytest.param("", ValueError, "must not be empty", id="empty key"),
        pytest.param(["k", 3], TypeError, "str or bytes, got int", id="key of another type"),
    ],
)
def test_bad_secrets_are_refused_naming_the_argument(
    secret: object, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message) as info:
        secrets_from("secret_key", secret)  # type: ignore[arg-type]
    assert "secret_key" in str(info.value)


def test_key_ring_needs_a_secret() -> None:
    with pytest.raises(ValueError, match="at least one secret"):
        KeyRing([], salt=b"x")


def test_key_ring_length_counts_keys() -> None:
    assert len(ring("a", "b", "c")) == 3
    assert secrets_from("k", b"raw") == (b"raw",)


@given(st.binary(max_size=200), st.binary(min_size=1, max_size=200))
def test_precomputed_hmac_equals_the_standard_library(message: bytes, key: bytes) -> None:
    for digest in ("sha256", "sha1"):
        assert _Mac(key, digest)(message) == hmac.digest(key, message, digest)


def test_keys_longer_than_the_hash_block_are_hashed_first_as_rfc_2104_says() -> None:
    key = b"k" * 100
    assert _Mac(key, "sha256")(b"m") == hmac.digest(key, b"m", "sha256")
