"""HTTP cookies: RFC 6265 §5.4 ``Cookie`` parsing, §4.1 ``Set-Cookie`` building, and the
cookie-prefix, SameSite and Partitioned rules of RFC 6265bis and CHIPS, checked at configuration."""

from __future__ import annotations

import re
import time
from collections.abc import Iterable
from typing import Literal

from .headers import is_token

SameSite = Literal["lax", "strict", "none"]

# RFC 6265 §4.1.1: cookie-octet = %x21 / %x23-2B / %x2D-3A / %x3C-5B / %x5D-7E
_COOKIE_VALUE = re.compile(rb"[\x21\x23-\x2b\x2d-\x3a\x3c-\x5b\x5d-\x7e]*")
_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
# RFC 6265 §4.1.1: av-octet = any CHAR except CTLs or ";"
_ATTRIBUTE_OCTETS = frozenset(range(0x20, 0x7F)) - {ord(";")}


def parse_cookie(values: Iterable[bytes]) -> dict[str, str]:
    """Parse ``Cookie`` header field values into ``{name: value}``.

    Tolerant as RFC 6265 §5.4 asks of servers: pairs split on ``;``, whitespace trimmed, one pair
    of surrounding double quotes removed, pairs without ``=`` or with an empty name ignored. When a
    name repeats, the first wins: browsers send the cookie with the most specific Path first.
    Bytes are read as Latin-1, so any input parses and round-trips to the same bytes.
    """
    cookies: dict[str, str] = {}
    for value in values:
        for pair in value.decode("latin-1").split(";"):
            name, sep, raw = pair.partition("=")
            name = name.strip(" \t")
            if not sep or not name or name in cookies:
                continue
            raw = raw.strip(" \t")
            if len(raw) >= 2 and raw[0] == raw[-1] == '"':
                raw = raw[1:-1]
            cookies[name] = raw
    return cookies


def is_cookie_value(value: str | bytes) -> bool:
    """Return whether ``value`` may be sent unquoted as a cookie value (RFC 6265 §4.1.1)."""
    if isinstance(value, str):
        if not value.isascii():
            return False
        value = value.encode("ascii")
    return _COOKIE_VALUE.fullmatch(value) is not None


def http_date(timestamp: float) -> bytes:
    """Format Unix time as an IMF-fixdate (RFC 9110 §5.6.7), as ``Expires`` needs."""
    t = time.gmtime(timestamp)
    return (
        f"{_DAYS[t.tm_wday]}, {t.tm_mday:02d} {_MONTHS[t.tm_mon - 1]} {t.tm_year} "
        f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} GMT"
    ).encode("ascii")


# Attribute names in the order each spelling writes them after the expiry.
_RFC_ATTRIBUTES = ("Path", "Domain", "Secure", "HttpOnly", "SameSite", "Partitioned")
_STARLETTE_FLAGS = ("httponly", "samesite", "secure", "domain", "partitioned")


def _render(names: tuple[str, ...], values: dict[str, str | bool | None]) -> bytes:
    """``; Name=value`` for string values, ``; Name`` for True, nothing for False or None."""
    parts = []
    for name in names:
        value = values[name.lower()]
        if isinstance(value, str):
            parts.append(f"; {name}={value}")
        elif value:
            parts.append(f"; {name}")
    return "".join(parts).encode("ascii")


class CookieOptions:
    """The attributes of one cookie, validated once and turned into ``Set-Cookie`` values.

    Args:
        name: Cookie name, an RFC 9110 token.
        path: ``Path`` attribute. Defaults to ``"/"``.
        domain: ``Domain`` attribute, or None for a host-only cookie.
        secure: Send the ``Secure`` attribute.
        httponly: Send the ``HttpOnly`` attribute.
        same_site: ``"lax"``, ``"strict"`` or ``"none"`` (which requires ``secure``), or None
            to leave the browser's default.
        partitioned: Send the CHIPS ``Partitioned`` attribute (requires ``secure``).
        starlette_spelling: Write the attributes as Starlette's ``SessionMiddleware`` does,
            byte for byte: ``path=``, ``Max-Age=``, ``httponly; samesite=…``, ``secure``,
            ``domain=``, ``partitioned``, without ``Expires``, and clear with ``null`` and
            ``expires=`` 1970. RFC 6265 §5.2 reads attribute names case-insensitively, so this
            changes nothing for browsers, only for tests that compare the strings.

    Raises:
        ValueError: an attribute the browsers would reject or silently ignore, naming the rule.
    """

    __slots__ = (
        "_before_age",
        "_delete",
        "_expires",
        "_prefix",
        "_suffix",
        "domain",
        "name",
        "path",
        "secure",
    )

    def __init__(
        self,
        name: str,
        *,
        path: str = "/",
        domain: str | None = None,
        secure: bool = False,
        httponly: bool = True,
        same_site: SameSite | None = "lax",
        partitioned: bool = False,
        starlette_spelling: bool = False,
    ) -> None:
        if not is_token(name):
            raise ValueError(f"cookie name must be an HTTP token, got {name!r}")
        for attribute, value in (("path", path), ("domain", domain)):
            if value is not None and not (
                value and value.isascii() and all(ord(c) in _ATTRIBUTE_OCTETS for c in value)
            ):
                raise ValueError(
                    f"cookie {attribute} must be non-empty printable ASCII without ';', "
                    f"got {value!r}"
                )
        if same_site is not None:
            same_site = same_site.lower()  # type: ignore[assignment]
            if same_site not in ("lax", "strict", "none"):
                raise ValueError(
                    f"same_site must be 'lax', 'strict', 'none' or None, got {same_site!r}"
                )
            if same_site == "none" and not secure:
                raise ValueError("same_site='none' requires a secure cookie (RFC 6265bis §5.6.7)")
        if partitioned and not secure:
            raise ValueError("partitioned cookies must be secure (CHIPS)")
        if name.startswith("__Secure-") and not secure:
            raise ValueError(f"the __Secure- prefix requires a secure cookie, got name {name!r}")
        if name.startswith("__Host-") and (not secure or domain is not None or path != "/"):
            raise ValueError(
                f"the __Host- prefix requires a secure cookie with path '/' and no domain, "
                f"got name {name!r} (secure={secure}, path={path!r}, domain={domain!r})"
            )
        self.name = name
        self.path = path
        self.domain = domain
        self.secure = secure
        # Everything but the value and the expiry is rendered once, here.
        self._prefix = f"{name}=".encode("ascii")
        self._expires = not starlette_spelling
        values: dict[str, str | bool | None] = {
            "path": path,
            "domain": domain,
            "secure": secure,
            "httponly": httponly,
            "samesite": same_site if starlette_spelling or same_site is None else same_site.title(),
            "partitioned": partitioned,
        }
        if starlette_spelling:
            # Starlette's SessionMiddleware: path before Max-Age, the flags lower-case after it.
            self._before_age = f"; path={path}".encode("ascii")
            self._suffix = _render(_STARLETTE_FLAGS, values)
            self._delete = (
                self._prefix
                + b"null"
                + self._before_age
                + b"; expires=Thu, 01 Jan 1970 00:00:00 GMT"
                + self._suffix
            )
        else:
            self._before_age = b""
            self._suffix = _render(_RFC_ATTRIBUTES, values)
            self._delete = (
                self._prefix
                + b'""; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0'
                + self._suffix
            )

    def header(
        self, value: str | bytes, *, max_age: int | None = None, now: float | None = None
    ) -> bytes:
        """Build a ``Set-Cookie`` value for ``value``.

        ``max_age`` in seconds sends both ``Max-Age`` and ``Expires`` (for old clients); None makes
        a browser-session cookie. ``now`` is the Unix time ``Expires`` counts from.

        Raises:
            ValueError: ``value`` has characters outside RFC 6265 cookie-octets.
        """
        raw = value.encode("latin-1", "replace") if isinstance(value, str) else value
        if (isinstance(value, str) and not value.isascii()) or not _COOKIE_VALUE.fullmatch(raw):
            raise ValueError(
                f"cookie value has characters outside RFC 6265 cookie-octets: {value!r}"
            )
        if max_age is None:
            return self._prefix + raw + self._before_age + self._suffix
        expiry = b"; Max-Age=%d" % max_age
        if self._expires:
            expiry += b"; Expires=" + http_date((time.time() if now is None else now) + max_age)
        return self._prefix + raw + self._before_age + expiry + self._suffix

    def delete_header(self) -> bytes:
        """Build the ``Set-Cookie`` value that removes this cookie (same Path and Domain)."""
        return self._delete
