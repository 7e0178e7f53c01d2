"""HMAC signing with key rings (RFC 2104 HMAC, RFC 4648 §5 base64url), plus verification of
itsdangerous ``TimestampSigner`` tokens so values signed by Starlette keep verifying.

A key ring signs with its first key and verifies with every key, reporting which one matched,
so a secret can be rotated without logging anybody out: put the new key first and keep the old
one until the values it signed have expired.
"""

from __future__ import annotations

import binascii
import hashlib
import hmac
import warnings
from collections.abc import Sequence

Secret = str | bytes

# itsdangerous 2.x ``Signer`` defaults, the ones Starlette's SessionMiddleware relies on:
# salt "itsdangerous.Signer", key derivation "django-concat", HMAC-SHA1, separator ".".
_ITSDANGEROUS_SALT = b"itsdangerous.Signer"
#: Keys shorter than this many bytes draw a warning: HMAC-SHA256 keys should have at least the
#: hash's 32 bytes of entropy (RFC 2104 §3), and "change-me" can be guessed offline from one
#: value it signed.
MINIMUM_KEY_SIZE = 32
# RFC 4648 §5: base64url is base64 with "-" and "_" for "+" and "/". binascii directly: the
# base64 module's wrappers cost more than the conversion on cookie-sized values.
_TO_URLSAFE = bytes.maketrans(b"+/", b"-_")
_FROM_URLSAFE = bytes.maketrans(b"-_", b"+/")


def b64encode(data: bytes) -> bytes:
    """Encode ``data`` as unpadded base64url (RFC 4648 §5), safe in cookies and URLs."""
    return binascii.b2a_base64(data, newline=False).translate(_TO_URLSAFE).rstrip(b"=")


def b64decode(data: bytes) -> bytes:
    """Decode unpadded base64url (standard base64 is accepted too); raise ``ValueError`` on
    anything else."""
    try:
        return binascii.a2b_base64(data.translate(_FROM_URLSAFE) + b"=" * (-len(data) % 4))
    except binascii.Error as exc:
        raise ValueError(f"not base64url: {exc}") from None


def _as_bytes(name: str, key: object) -> bytes:
    if isinstance(key, str):
        key = key.encode("utf-8")
    if not isinstance(key, bytes):
        raise TypeError(f"{name} keys must be str or bytes, got {type(key).__name__}")
    if not key:
        raise ValueError(f"{name} keys must not be empty")
    return key


def secrets_from(name: str, secret: Secret | Sequence[Secret]) -> tuple[bytes, ...]:
    """Normalise one secret or a list of secrets into a tuple of bytes, newest first.

    Args:
        name: The argument name to put in error messages.
        secret: A key, or a non-empty sequence of keys whose first element is the newest.
    """
    keys = [secret] if isinstance(secret, (str, bytes)) else list(secret)
    if not keys:
        raise ValueError(f"{name} must be a key or a non-empty list of keys, got {secret!r}")
    return tuple(_as_bytes(name, key) for key in keys)


def signing_keys(name: str, secret: Secret | Sequence[Secret]) -> tuple[bytes, ...]:
    """`secrets_from`, warning (``UserWarning``, pointing at the caller's caller: the line
    that built the middleware) when a key is shorter than ``MINIMUM_KEY_SIZE`` bytes."""
    keys = secrets_from(name, secret)
    if any(len(key) < MINIMUM_KEY_SIZE for key in keys):
        warnings.warn(
            f"{name} has a key shorter than {MINIMUM_KEY_SIZE} bytes: anyone holding one value "
            "it signed (a cookie, a token) can guess it offline and forge more. Generate one "
            "with python -c 'import secrets; print(secrets.token_urlsafe(32))'",
            UserWarning,
            stacklevel=3,
        )
    return keys


_IPAD = bytes(x ^ 0x36 for x in range(256))
_OPAD = bytes(x ^ 0x5C for x in range(256))


class _Mac:
    """HMAC (RFC 2104 §2) with the key's inner and outer pads hashed once, up front.

    ``hmac.digest`` redoes that key set-up on every call, which is half the cost of signing a
    cookie-sized value.
    """

    __slots__ = ("_inner", "_outer")

    def __init__(self, key: bytes, digest: str) -> None:
        block = hashlib.new(digest).block_size
        if len(key) > block:
            key = hashlib.new(digest, key).digest()
        key = key.ljust(block, b"\0")
        self._inner = hashlib.new(digest, key.translate(_IPAD))
        self._outer = hashlib.new(digest, key.translate(_OPAD))

    def __call__(self, message: bytes) -> bytes:
        inner = self._inner.copy()
        inner.update(message)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.digest()


class KeyRing:
    """Sign with the newest key, verify with all of them.

    Each secret is turned into its own HMAC-SHA256 key by an HMAC of ``salt`` (so one secret
    used for several purposes gives unrelated keys). A signed value is
    ``value + b"." + base64url(HMAC-SHA256(key, value))``.

    Args:
        secrets: The secrets, newest first; the first signs.
        salt: What the keys are for, mixed into each derived key.
    """

    __slots__ = ("_keys", "_legacy_keys", "secrets")

    def __init__(self, secrets: Sequence[bytes], *, salt: bytes) -> None:
        if not secrets:
            raise ValueError("a key ring needs at least one secret")
        self.secrets = tuple(secrets)
        self._keys = tuple(
            _Mac(hmac.digest(secret, salt, "sha256"), "sha256") for secret in self.secrets
        )
        # itsdangerous "django-concat" derivation: SHA1(salt + b"signer" + secret).
        self._legacy_keys = tuple(
            _Mac(hashlib.sha1(_ITSDANGEROUS_SALT + b"signer" + secret).digest(), "sha1")
            for secret in self.secrets
        )

    def __len__(self) -> int:
        return len(self._keys)

    def sign(self, value: bytes) -> bytes:
        """Return ``value`` followed by ``.`` and its signature under the newest key."""
        return value + b"." + b64encode(self._keys[0](value))

    def unsign(self, signed: bytes) -> tuple[bytes, int] | None:
        """Return ``(value, index of the key that verified)``, or None if no key does."""
        value, sep, signature = signed.rpartition(b".")
        if not sep:
            return None
        # Compare encoded signatures: only the canonical encoding that sign() makes verifies.
        for index, mac in enumerate(self._keys):
            if hmac.compare_digest(b64encode(mac(value)), signature):
                return value, index
        return None

    def unsign_itsdangerous(self, signed: bytes) -> tuple[bytes, int, int] | None:
        """Verify an itsdangerous ``TimestampSigner`` token signed with one of the secrets.

        Returns ``(value, timestamp in Unix seconds, key index)`` or None. The caller checks the
        age: this only proves who signed it and when.
        """
        head, sep, signature = signed.rpartition(b".")
        value, sep2, stamp = head.rpartition(b".")
        if not sep or not sep2:
            return None
        try:
            expected = b64decode(signature)
            timestamp = int.from_bytes(b64decode(stamp), "big")
        except ValueError:
            return None
        for index, mac in enumerate(self._legacy_keys):
            if hmac.compare_digest(mac(head), expected):
                return value, timestamp, index
        return None
