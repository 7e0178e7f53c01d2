"""The client, scheme, host, port and prefix a trusted proxy forwarded: RFC 7239 ``Forwarded``
or the de facto ``X-Forwarded-For/-Proto/-Host/-Port/-Prefix``."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

from ._core.hosts import format_host, host_field, parse_host
from ._core.proxies import (
    ORIGINAL_KEY,
    ForwardedResolver,
    Forwarding,
    TrustedProxies,
    request_scheme,
    scheme_for,
)
from ._types import ASGIApp, Receive, Scope, Send

__all__ = ["ORIGINAL_KEY", "ProxyHeadersMiddleware", "apply_forwarding"]


_SERVED = frozenset({"http", "websocket"})
_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}


def _count(name: str, value: object, *, optional: bool) -> Any:
    if (value is None and optional) or (
        isinstance(value, int) and not isinstance(value, bool) and value >= 0
    ):
        return value
    allowed = "None or a count >= 0" if optional else "a count >= 0"
    raise ValueError(f"{name} must be {allowed}, got {value!r}")


class ProxyHeadersMiddleware:
    """Make the scope describe the client, not the proxy in front of the app.

    When the connection's peer is a trusted proxy, the forwarding fields it sent replace
    ``scope["client"]`` and ``scope["scheme"]``, and, when enabled, the ``Host`` header with
    ``scope["server"]``, and ``root_path``/``path`` for a prefix. A chain is read from the
    right: each trusted proxy appended the address it received the request from, so the client
    is the first address that is not a trusted proxy; what the client itself wrote on the left
    is never believed. A hop that is not an IP address ends the walk and never becomes the
    client. Schemes are lower-cased and limited to ``http``, ``https``, ``ws``, ``wss``; a
    WebSocket gets ``ws``/``wss``, an HTTP request ``http``/``https``. A trusted ``http``
    means http even over TLS. Replaced values are kept in ``scope["middlewares.proxy_headers"]``.
    Requests from other peers, and values that do not parse, leave the scope as it is.

    Args:
        app: The ASGI application to wrap.
        trusted_hosts: The proxies' addresses and CIDR networks, as a list or a comma-separated
            string. Defaults to ``"127.0.0.1"``. ``"*"`` trusts any peer and believes one hop.
        trust_unix_socket: Trust a peer connected over a Unix socket (no ``client``).
            Defaults to False.
        forwarded: Read RFC 7239 ``Forwarded`` instead of ``X-Forwarded-*`` (never both).
            Defaults to False.
        x_for: None (the default) finds the client by walking the chain past trusted
            addresses; a count trusts that many hops from the right, whatever their addresses
            (werkzeug's ``ProxyFix``).
        x_proto: None (the default) reads the scheme at the client's hop; 0 ignores it; a
            count reads that many from the right.
        x_host: Read the forwarded host: 0 (the default) never; a count, that member of
            ``X-Forwarded-Host`` from the right (with ``forwarded``, the client element's
            ``host``).
        x_port: Read ``X-Forwarded-Port``: 0 (the default) never, else that member from the
            right.
        x_prefix: Read ``X-Forwarded-Prefix``: 0 (the default) never, else that member from
            the right.

    Raises:
        ValueError: a trusted host is not an address, network or ``"*"``; a count is
            negative or not an integer; ``x_port`` or ``x_prefix`` with ``forwarded``.
        TypeError: ``trusted_hosts`` is neither a string nor a list.
    """

    __slots__ = ("_resolver", "_trust", "app")

    def __init__(
        self,
        app: ASGIApp,
        *,
        trusted_hosts: Sequence[str] | str = "127.0.0.1",
        trust_unix_socket: bool = False,
        forwarded: bool = False,
        x_for: int | None = None,
        x_proto: int | None = None,
        x_host: int = 0,
        x_port: int = 0,
        x_prefix: int = 0,
    ) -> None:
        if isinstance(trusted_hosts, str):
            trusted_hosts = [entry.strip() for entry in trusted_hosts.split(",") if entry.strip()]
        elif not isinstance(trusted_hosts, Sequence):
            raise TypeError(f"trusted_hosts must be a string or a list, got {trusted_hosts!r}")
        if x_for == 0:
            raise ValueError("x_for must be None or a count >= 1, got 0")
        counts = {
            "x_for": _count("x_for", x_for, optional=True),
            "x_proto": _count("x_proto", x_proto, optional=True),
            "x_host": _count("x_host", x_host, optional=False),
            "x_port": _count("x_port", x_port, optional=False),
            "x_prefix": _count("x_prefix", x_prefix, optional=False),
        }
        if forwarded and (x_port or x_prefix):
            raise ValueError(
                "x_port and x_prefix read X-Forwarded-* fields, which forwarded=True never reads"
                f" (RFC 7239 has no port or prefix parameter), got x_port={x_port!r},"
                f" x_prefix={x_prefix!r}"
            )
        trust = TrustedProxies(trusted_hosts, unix_socket=trust_unix_socket)
        if trust.trust_all:
            warnings.warn(
                "trusted_hosts='*' trusts every peer: anyone who can reach the server directly"
                " can set the client address and scheme. List your proxies' addresses instead.",
                UserWarning,
                stacklevel=2,
            )
        self.app = app
        self._trust = trust
        self._resolver = ForwardedResolver(trust, forwarded=forwarded, **counts)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # ORIGINAL_KEY: an outer instance already resolved this scope; a second pass would prefix
        # the path twice and lose the connection's own peer.
        if (
            scope["type"] in _SERVED
            and ORIGINAL_KEY not in scope
            and self._trust.trusts_peer(scope)
        ):
            forwarding = self._resolver.resolve(scope["headers"])
            if forwarding is not None:
                apply_forwarding(scope, forwarding)
        await self.app(scope, receive, send)


def apply_forwarding(scope: Scope, forwarding: Forwarding) -> None:
    """Write what the trusted proxies said into ``scope`` (in place, never a deep copy), and the
    values it replaces under ``scope["middlewares.proxy_headers"]``."""
    original: dict[str, Any] = {}
    if forwarding.client is not None:
        original["client"] = scope.get("client")
        scope["client"] = forwarding.client
    if forwarding.secure is not None:
        scheme = scheme_for(scope["type"], forwarding.secure)
        if scheme != scope.get("scheme"):
            original["scheme"] = scope.get("scheme")
            scope["scheme"] = scheme
    if forwarding.host is not None or forwarding.port is not None:
        _apply_host(scope, forwarding, original)
    if forwarding.prefix is not None:
        prefix = forwarding.prefix
        for key in ("root_path", "path", "raw_path"):
            original[key] = scope.get(key)
        scope["root_path"] = prefix + scope.get("root_path", "")
        scope["path"] = prefix + scope["path"]
        if scope.get("raw_path") is not None:
            scope["raw_path"] = prefix.encode("ascii") + scope["raw_path"]
    if original:
        scope[ORIGINAL_KEY] = original


def _apply_host(scope: Scope, forwarding: Forwarding, original: dict[str, Any]) -> None:
    default = _DEFAULT_PORTS[request_scheme(scope)]
    host = forwarding.host
    if host is None:
        raw = host_field(scope)
        host = None if raw is None else parse_host(raw)
    port = forwarding.port if forwarding.port is not None else (host[1] if host else None)
    server = scope.get("server")
    name = host[0].strip("[]") if host else (server[0] if server else None)
    if name is not None:
        original["server"] = server
        scope["server"] = (name, port or default)
    if host is not None:
        headers = scope["headers"]
        original["headers"] = headers
        value = format_host((host[0], port), default).encode("ascii")
        scope["headers"] = [(k, v) for k, v in headers if k != b"host"] + [(b"host", value)]
