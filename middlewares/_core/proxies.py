"""The trusted-proxy model: what a request's client, scheme and origin really are.

``ProxyHeadersMiddleware`` rewrites the scope from the forwarding headers of trusted proxies
(RFC 7239 ``Forwarded``, de facto ``X-Forwarded-*``); every other middleware asks the
accessors below and never reads a forwarding header itself.
"""

from __future__ import annotations

from .._types import Scope

_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}


def client_host(scope: Scope) -> str | None:
    """Return the client's address as the proxy model resolved it, or None (a Unix socket)."""
    client = scope.get("client")
    return client[0] if client else None


def request_scheme(scope: Scope) -> str:
    """Return the request's scheme as the proxy model resolved it (``http``, ``https``,
    ``ws``, ``wss``); the ASGI default when the server gave none."""
    scheme = scope.get("scheme")
    if scheme:
        return str(scheme)
    return "ws" if scope.get("type") == "websocket" else "http"


def is_secure(scope: Scope) -> bool:
    """Return whether the request came over TLS, as the proxy model resolved it."""
    return request_scheme(scope) in ("https", "wss")


def request_origin(scope: Scope) -> str | None:
    """Return the request's own origin, ``scheme://host[:port]`` (RFC 6454 §6.2 serialization,
    default port dropped, host lower-cased), from the resolved scheme and the ``Host`` header;
    None when the request has no usable ``Host``."""
    host = None
    for key, value in scope.get("headers", ()):
        if key == b"host":
            if host is not None:
                return None  # RFC 9112 §3.2: more than one Host is invalid
            host = value
    if not host:
        return None
    try:
        text = host.decode("ascii").lower()
    except UnicodeDecodeError:
        return None
    scheme = request_scheme(scope)
    scheme = {"ws": "http", "wss": "https"}.get(scheme, scheme)
    name, _, port = text.rpartition(":") if not text.endswith("]") else (text, "", "")
    if port and name and port.isdigit() and int(port) == _DEFAULT_PORTS[scheme]:
        text = name
    return f"{scheme}://{text}"
