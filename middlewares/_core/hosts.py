"""The ``Host`` header and allowed-host entries: RFC 9110 §7.2 and RFC 3986 §3.2.2 (host, port).

One normaliser serves the configuration and the requests, so that ``EXAMPLE.com.``, ``example.com``
and ``example.com:443`` are compared as the same name: lower-cased, one trailing dot dropped
(RFC 1034 absolute names), IPv6 literals in brackets and canonical form, internationalised names
in their IDNA (punycode) form, the port as an integer.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Iterable
from urllib.parse import quote, quote_from_bytes

from .._types import Scope

# RFC 3986 §3.2.2: reg-name = *( unreserved / pct-encoded / sub-delims ), here non-empty labels
# separated by dots; §3.2.3: port = *DIGIT, here 1 to 5 digits. IPvFuture literals are refused.
_HOST = re.compile(
    r"(?:(?P<name>[a-z0-9_~!$&'()*+,;=%-]+(?:\.[a-z0-9_~!$&'()*+,;=%-]+)*)\.?"
    r"|\[(?P<ipv6>[0-9a-f:.]+)\])"
    r"(?::(?P<port>[0-9]{1,5}))?",
    re.IGNORECASE,
)
# RFC 3986 §3.3: pchar and "/" stay as they are in a path; everything else is percent-encoded.
_PATH_SAFE = "/:@!$&'()*+,;=-._~%"
_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}
# A Host longer than a DNS name (253) plus a port is never valid; it is not cached either.
_MAX_HOST = 300

#: A normalised host: the name (``example.com``, ``192.0.2.1``, ``[2001:db8::1]``) and the
#: port, or None when the value gave none.
Host = tuple[str, "int | None"]


def _parse(text: str) -> Host | None:
    match = _HOST.fullmatch(text)
    if match is None:
        return None
    port_text = match["port"]
    port = int(port_text) if port_text else None
    if port is not None and port > 65535:
        return None
    name = match["name"]
    if name is None:
        try:
            return f"[{ipaddress.IPv6Address(match['ipv6']).compressed}]", port
        except ValueError:
            return None
    return name.lower(), port


@functools.lru_cache(maxsize=4096)
def _parse_cached(raw: bytes) -> Host | None:
    return _parse(raw.decode("ascii")) if raw.isascii() else None


def parse_host(raw: bytes) -> Host | None:
    """Return a ``Host`` field value normalised, or None when it is not ``host[:port]``.

    Non-ASCII bytes, a path, query or fragment (``a/b``, ``a?b``, ``a#b``), userinfo, an empty
    label (``a..b``), an unbracketed or invalid IPv6 literal and a port over 65535 are all
    invalid.
    """
    if len(raw) > _MAX_HOST:
        return None
    return _parse_cached(raw if type(raw) is bytes else bytes(raw))


def host_field(scope: Scope) -> bytes | None:
    """Return the request's one ``Host`` field value, or None when it has none or several
    (RFC 9112 §3.2: both are invalid)."""
    found: bytes | None = None
    for key, value in scope["headers"]:
        if key == b"host":
            if found is not None:
                return None
            found = value
    return found


def normalise_entry(entry: str, argument: str) -> Host:
    """Return a configured host (``"Example.COM"``, ``"bücher.example"``, ``"::1"``,
    ``"localhost:8000"``) normalised like a request's, or raise ``ValueError`` naming it."""
    if not isinstance(entry, str):
        raise TypeError(f"{argument} entries must be strings, got {entry!r}")
    text = entry.strip()
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        pass
    else:
        text = f"[{text}]"  # a bare IPv6 address: the only reading of several colons
    if not text.isascii():
        name, colon, port = text.rpartition(":") if "]" not in text else (text, "", "")
        if not colon or not port.isdigit():
            name, colon, port = text, "", ""
        try:
            text = name.rstrip(".").encode("idna").decode("ascii") + colon + port
        except UnicodeError:
            raise ValueError(
                f"{argument} entries must be valid host names, got {entry!r}"
            ) from None
    host = _parse(text)
    if host is None:
        raise ValueError(
            f"{argument} entries must be host names, IP addresses or '*.domain' wildcards,"
            f" with an optional ':port', got {entry!r}"
        )
    return host


def format_host(host: Host, default_port: int | None = None) -> str:
    """Return ``name[:port]``, leaving out the port when it is None or ``default_port``."""
    name, port = host
    return name if port is None or port == default_port else f"{name}:{port}"


class HostAllowList:
    """Which hosts a request may name: exact names, ``*.domain`` wildcards, optional ports.

    ``"example.com"`` allows that name on any port; ``"example.com:8443"`` only with that port
    (the scheme's default port when the ``Host`` has none); ``"*.example.com"`` every subdomain
    at any depth, never the apex itself; ``"*"`` everything.

    Args:
        entries: The allowed hosts, normalised like requests (case, trailing dot, IDNA, IPv6).
        argument: The argument name used in error messages.

    Raises:
        TypeError: ``entries`` is a string rather than a list of strings.
        ValueError: an entry is not a host, or has ``*`` anywhere but a leading ``*.``.
    """

    __slots__ = ("_names", "_ported", "_ported_suffixes", "_suffixes", "allow_any")

    def __init__(self, entries: Iterable[str], *, argument: str = "allowed_hosts") -> None:
        if isinstance(entries, (str, bytes)):
            raise TypeError(f"{argument} must be a list of host names, got the string {entries!r}")
        names: set[str] = set()
        ported: set[Host] = set()
        suffixes: list[str] = []
        ported_suffixes: list[tuple[str, int]] = []
        allow_any = False
        for entry in entries:
            if entry == "*":
                allow_any = True
                continue
            wildcard = isinstance(entry, str) and entry.startswith("*.")
            name, port = normalise_entry(entry[2:] if wildcard else entry, argument)
            if "*" in name:
                raise ValueError(
                    f"{argument} wildcards must be like '*.example.com', got {entry!r}"
                )
            if wildcard:
                if port is None:
                    suffixes.append("." + name)
                else:
                    ported_suffixes.append(("." + name, port))
            elif port is None:
                names.add(name)
            else:
                ported.add((name, port))
        self.allow_any = allow_any
        self._names = frozenset(names)
        self._ported = frozenset(ported)
        self._suffixes = tuple(suffixes)
        self._ported_suffixes = tuple(ported_suffixes)

    @property
    def has_ports(self) -> bool:
        """Whether an entry names a port, so that the answer depends on the scheme."""
        return bool(self._ported or self._ported_suffixes)

    def names(self, name: str) -> bool:
        """Return whether ``name`` is listed exactly, without a port (not by a wildcard)."""
        return name in self._names

    def allows(self, host: Host, scheme: str = "http") -> bool:
        """Return whether the normalised ``host`` is allowed; the default port of ``scheme``
        stands in for a ``Host`` without a port."""
        if self.allow_any:
            return True
        name = host[0]
        if name in self._names or (self._suffixes and name.endswith(self._suffixes)):
            return True
        if not (self._ported or self._ported_suffixes):
            return False
        port = _DEFAULT_PORTS.get(scheme, 80) if host[1] is None else host[1]
        return (name, port) in self._ported or any(
            port == p and name.endswith(s) for s, p in self._ported_suffixes
        )


def request_target(scope: Scope) -> str:
    """Return the request's path and query as sent (``raw_path``, else ``path`` percent-encoded),
    for a ``Location`` that keeps the client's bytes."""
    raw = scope.get("raw_path")
    path = quote_from_bytes(raw, _PATH_SAFE) if raw else quote(scope["path"], _PATH_SAFE)
    if not path.startswith("/"):
        # RFC 9112 §3.2: only origin-form starts with "/"; h11 passes "@evil.com/", "*" and
        # absolute-form through as the path, which after "https://host" would name another
        # host. Under "/" they stay a path on the checked host.
        path = "/" + path
    query: bytes = scope.get("query_string", b"")
    return f"{path}?{quote_from_bytes(query, _PATH_SAFE + '?')}" if query else path
