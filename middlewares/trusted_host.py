"""Refuse requests for hosts the app does not serve: RFC 9110 §7.2 ``Host``, RFC 9112 §3.2."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from ._core.hosts import Host, HostAllowList, format_host, parse_host, request_target
from ._core.outcome import set_outcome
from ._core.paths import PathMatcher, PathPattern
from ._core.proxies import request_scheme
from ._core.respond import refuse_handshake, send_response
from ._types import ASGIApp, Receive, Scope, Send

__all__ = ["TrustedHostMiddleware", "host_decision"]

_SERVED = frozenset({"http", "websocket"})
_INVALID = b"Invalid host header"
# Longer values are never valid hosts (a DNS name is at most 253 bytes): decided uncached.
_CACHED_HOST = 300
_CACHE_SIZE = 1024

Verdict = Literal["allow", "www", "refuse"]


def host_decision(
    raw: bytes | None, scheme: str, allowed: HostAllowList, www_redirect: bool
) -> tuple[Verdict, Host | None]:
    """Decide a request from its one ``Host`` value (None when it has none): ``allow``,
    ``www`` (redirect to the listed ``www.`` name) or ``refuse`` (400), with the normalised
    host when it has one.

    RFC 9112 §3.2: a malformed ``Host`` is refused before the list is consulted. Only an
    HTTP/1.1 request must carry one (the caller passes ``b""`` for it when it has none or
    several); any other without one is allowed by ``"*"`` alone.
    """
    host = None if raw is None else parse_host(raw)
    if host is None:
        return ("allow" if raw is None and allowed.allow_any else "refuse"), None
    if allowed.allows(host, scheme):
        return "allow", host
    if www_redirect and allowed.names("www." + host[0]):
        return "www", host
    return "refuse", host


class TrustedHostMiddleware:
    """Answer only requests whose ``Host`` names this app: the defence against DNS rebinding
    and against host-header poisoning of URLs, redirects and password-reset links.

    ``Host`` is normalised as the entries are (case, one trailing dot, IDNA, IPv6 brackets,
    port), then compared: ``"example.com"`` allows it on any port, ``"example.com:8443"`` only
    on that port, ``"*.example.com"`` every subdomain but not the apex, ``"*"`` everything. A
    repeated or malformed ``Host`` (a path, query, userinfo, bad IPv6, port over 65535), or none
    in HTTP/1.1, is refused with 400 before the app runs, whatever the list. A refused WebSocket
    handshake is closed before accept (1008), which every server answers with 403. Put it inside
    ``ProxyHeadersMiddleware`` and the logging, tracing and security-header layers, before
    anything that builds a URL from ``Host`` (see the ordering page), so no inner layer ever
    builds a URL from an unchecked host.

    Args:
        app: The ASGI application to wrap.
        allowed_hosts: Host names, IP addresses and ``*.domain`` wildcards, each with an
            optional ``:port``. Defaults to None, which allows every well-formed host (``"*"``).
        www_redirect: Redirect (307) a request for ``example.com`` to ``www.example.com`` when
            only the latter is listed. Defaults to True.
        exclude_paths: Paths served whatever the ``Host`` (``"/healthz"``, ``"/probes/*"``):
            health checks that address the pod by IP. Defaults to none.
        websocket_denial_response: Refuse a WebSocket handshake with the 400 as a denial
            response where the server offers the extension, instead of a close before accept.
            Off by default: uvicorn's default WebSocket stack logs an ERROR line for each denial
            response, and the ``Host`` is the client's to choose.

    Raises:
        TypeError: ``allowed_hosts`` is a string instead of a list.
        ValueError: an entry is not a host, or has ``*`` anywhere but a leading ``*.``.
    """

    __slots__ = (
        "_allowed",
        "_cacheable",
        "_denial_response",
        "_exclude",
        "_verdicts",
        "_www",
        "allowed_hosts",
        "app",
    )

    def __init__(
        self,
        app: ASGIApp,
        *,
        allowed_hosts: Sequence[str] | None = None,
        www_redirect: bool = True,
        exclude_paths: Sequence[PathPattern] = (),
        websocket_denial_response: bool = False,
    ) -> None:
        if allowed_hosts is None:
            allowed_hosts = ["*"]
        self.app = app
        self._allowed = HostAllowList(allowed_hosts, argument="allowed_hosts")
        self.allowed_hosts = tuple(allowed_hosts)
        self._www = bool(www_redirect)
        self._denial_response = websocket_denial_response
        self._exclude = PathMatcher(exclude_paths) or None
        # Few distinct hosts reach an app: remember each one's verdict (a bounded cache of a
        # pure function of the Host value; entries with a port also depend on the scheme).
        self._verdicts: dict[bytes | None, tuple[Verdict, Host | None]] = {}
        self._cacheable = not self._allowed.has_ports

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in _SERVED or (
            self._exclude is not None and self._exclude.matches(scope)
        ):
            await self.app(scope, receive, send)
            return
        raw = None
        for key, value in scope["headers"]:
            if key == b"host":
                if raw is not None:
                    raw = b""  # RFC 9112 §3.2: two Host fields are as invalid as a bad one
                    break
                raw = value
        if raw is None and scope.get("http_version", "1.1") == "1.1":
            raw = b""  # RFC 9112 §3.2: HTTP/1.1 must send Host (1.0 may not; 2 sends :authority)
        decided = self._verdicts.get(raw)
        if decided is None:
            scheme = scope.get("scheme") or "http"
            decided = host_decision(raw, scheme, self._allowed, self._www)
            if self._cacheable and raw and len(raw) <= _CACHED_HOST:
                if len(self._verdicts) >= _CACHE_SIZE:
                    self._verdicts.clear()
                self._verdicts[raw] = decided
        verdict, host = decided
        if verdict == "allow":
            await self.app(scope, receive, send)
        elif verdict == "www" and host and scope["type"] == "http":
            netloc = format_host(("www." + host[0], host[1]))
            location = f"{request_scheme(scope)}://{netloc}{request_target(scope)}"
            await send_response(
                send, 307, [(b"location", location.encode("latin-1"))], content_type=None
            )
        else:  # a refused host, or a WebSocket handshake, which cannot follow a redirect
            set_outcome(scope, "forbidden")
            if scope["type"] == "websocket":
                await refuse_handshake(
                    scope, receive, send, 400, _INVALID, denial_response=self._denial_response
                )
            else:
                await send_response(send, 400, body=_INVALID)
