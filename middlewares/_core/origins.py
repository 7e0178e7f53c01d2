"""Configured origins: RFC 6454 §6.2 serialisation (``scheme://host[:port]``), as browsers send
``Origin``, with label-aware ``*.`` host and ``*`` port wildcards."""

from __future__ import annotations

import re

#: Default ports per scheme (RFC 6454 §4 step 5): an origin written with one drops it.
DEFAULT_PORTS = {"http": "80", "https": "443", "ws": "80", "wss": "443"}
_SCHEME = re.compile(r"[a-z][a-z0-9+.-]*")
_LABEL = r"[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?"
_HOST = re.compile(rf"{_LABEL}(?:\.{_LABEL})*|\[[0-9a-f:.]+\]")
_PORT = re.compile(r"[0-9]{1,5}")


def compile_origin(entry: str, argument: str = "allow_origins") -> tuple[str | None, str | None]:
    """Parse one configured origin into ``(exact origin, regex source)``, one of them None.

    An origin is ``scheme://host[:port]`` (RFC 6454 §6.2, as browsers serialise it): the scheme
    and host are lower-cased, IDN hosts become punycode, and a default port is dropped, so the
    result compares equal to what a browser sends. ``*.`` may start the host (one or more
    labels, never the bare domain) and ``*`` may be the port (digits only, or none).

    Args:
        entry: The origin as configured.
        argument: The argument it came from, named in error messages.

    Raises:
        ValueError: the entry has no scheme, a path, query, fragment, trailing slash, user
            info, an invalid host or port, or a ``*`` anywhere else.
    """
    if entry == "null":
        return "null", None
    scheme, separator, rest = entry.partition("://")
    if not separator:
        raise ValueError(
            f"{argument} entries must be scheme://host[:port], got {entry!r} without a scheme"
            f" (did you mean 'https://{entry}'?)"
        )
    scheme = scheme.lower()
    if not _SCHEME.fullmatch(scheme):
        raise ValueError(f"{argument} entry {entry!r} has an invalid scheme {scheme!r}")
    if any(c in rest for c in "/?#"):
        raise ValueError(
            f"{argument} entry {entry!r} has a path, query or trailing slash; an origin is"
            " scheme://host[:port] only, and browsers never send more"
        )
    if "@" in rest:
        raise ValueError(f"{argument} entry {entry!r} has user info; origins never do")
    if rest.startswith("["):
        host, bracket, port = rest.partition("]")
        host += bracket
        if port and not port.startswith(":"):
            raise ValueError(f"{argument} entry {entry!r} has an invalid IPv6 host")
        port = port[1:]
    else:
        host, _, port = rest.partition(":")
    host = host.lower()
    if not host.isascii():
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError as error:
            raise ValueError(f"{argument} entry {entry!r} has an invalid host") from error
    wildcard = host.startswith("*.")
    base = host[2:] if wildcard else host
    if "*" in base or (port != "*" and "*" in port):
        raise ValueError(
            f"{argument} entry {entry!r} has a '*' that is neither a whole leading label"
            " ('https://*.example.com') nor the whole port ('http://localhost:*')"
        )
    if not _HOST.fullmatch(base):
        raise ValueError(f"{argument} entry {entry!r} has an invalid host {host!r}")
    if wildcard and "." not in base and base != "localhost":
        raise ValueError(
            f"{argument} entry {entry!r} would match every site under a top-level domain"
        )
    if port not in ("", "*") and (not _PORT.fullmatch(port) or not 0 < int(port) < 65536):
        raise ValueError(f"{argument} entry {entry!r} has an invalid port {port!r}")
    if port == DEFAULT_PORTS.get(scheme):
        port = ""
    if not wildcard and port != "*":
        return f"{scheme}://{host}{':' + port if port else ''}", None
    source = re.escape(f"{scheme}://")
    # One or more whole labels before the base: never the apex, never "xexample.com".
    source += rf"(?:{_LABEL}\.)+{re.escape(base)}" if wildcard else re.escape(host)
    if port == "*":
        source += r"(?::[0-9]{1,5})?"
    elif port:
        source += re.escape(f":{port}")
    return None, source
