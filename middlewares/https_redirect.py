"""Send plain-http requests to https: RFC 9110 §15.4.8 (307) and §15.4.9 (308) redirects."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from ._core.hosts import (
    HostAllowList,
    format_host,
    host_field,
    normalise_entry,
    parse_host,
    request_target,
)
from ._core.outcome import set_outcome
from ._core.paths import PathMatcher, PathPattern
from ._core.respond import refuse_handshake, send_response
from ._types import ASGIApp, Receive, Scope, Send

__all__ = ["HTTPSRedirectMiddleware", "https_location"]

_SERVED = frozenset({"http", "websocket"})
_SECURE = frozenset({"https", "wss"})
_INVALID = b"Invalid host header"
_TLS_REQUIRED = b"This endpoint requires a secure WebSocket (wss://)"


def https_location(
    scope: Scope,
    *,
    redirect_host: tuple[str, int | None] | None = None,
    https_port: int | None = None,
    allowed: HostAllowList | None = None,
) -> str | None:
    """Return the secure URL for a plain request, or None when its ``Host`` is missing,
    malformed, repeated or not allowed (so nothing a client wrote is reflected).

    The host is ``redirect_host`` when given, else the request's; the port is ``https_port``
    when given, else the host's own port unless it is 80 or 443 (Starlette's rule).
    """
    if redirect_host is not None:
        host = redirect_host
    else:
        raw = host_field(scope)
        found = None if raw is None else parse_host(raw)
        if found is None or (allowed is not None and not allowed.allows(found)):
            return None
        host = found
    name, port = host
    if https_port is not None:
        port = https_port
    elif port in (80, 443):
        port = None
    scheme = "wss" if scope["type"] == "websocket" else "https"
    return f"{scheme}://{format_host((name, port), 443)}{request_target(scope)}"


class HTTPSRedirectMiddleware:
    """Redirect every plain-http request to the same URL on https.

    The scheme is the one the proxy model resolved (``scope["scheme"]`` as
    ``ProxyHeadersMiddleware`` left it), so behind a TLS-terminating proxy that your
    ``ProxyHeadersMiddleware`` trusts there is no loop, and a client's own
    ``X-Forwarded-Proto`` changes nothing. The redirect keeps the method and body (307 or 308,
    never 301/302), the path and the query; the target host is ``redirect_host``, or the
    request's ``Host`` when it is well-formed (and, with ``allowed_hosts``, listed): otherwise
    400, never a ``Location`` built from an untrusted or internal name. A plain WebSocket
    handshake is refused (403, or a close where the server has no denial responses), since
    browsers cannot follow a handshake redirect. HSTS is ``SecurityHeadersMiddleware``'s job.

    Args:
        app: The ASGI application to wrap.
        status_code: 307 (the default: temporary, so browsers do not pin it during
            development) or 308 (permanent). 301 and 302 are refused: clients may turn a
            redirected POST into a GET.
        https_port: The port of the https URL; None (the default) keeps the request's port
            unless it is 80 or 443.
        redirect_host: Redirect to this host (``"example.com"``, ``"example.com:8443"``)
            instead of the request's. Defaults to None.
        allowed_hosts: Redirect only requests whose ``Host`` is one of these (the syntax of
            ``TrustedHostMiddleware``); others get 400. Defaults to None (any well-formed host).
        exclude_paths: Paths served over plain http (``"/healthz"``, ``"/.well-known/*"``).
            Defaults to none.
        websocket_policy: ``"refuse"`` (the default: a close before accept, which every server
            answers with 403; browsers cannot follow a handshake redirect) or ``"redirect"`` (a
            307 denial response to ``wss://`` where the server offers the extension, else the
            same close).
        websocket_denial_response: With ``"refuse"``, send the 403 (or a refused host's 400) as
            a denial response where the server offers the extension, instead of a close. Off
            by default: uvicorn's default WebSocket stack logs an ERROR line for each denial
            response.

    Raises:
        ValueError: a ``status_code`` other than 307 or 308, an ``https_port`` outside
            1-65535, a malformed ``redirect_host`` or ``allowed_hosts`` entry, or an unknown
            ``websocket_policy``.
    """

    __slots__ = (
        "_allowed",
        "_denial_response",
        "_exclude",
        "_host",
        "_port",
        "_redirect_ws",
        "_status",
        "app",
    )

    def __init__(
        self,
        app: ASGIApp,
        *,
        status_code: int = 307,
        https_port: int | None = None,
        redirect_host: str | None = None,
        allowed_hosts: Sequence[str] | None = None,
        exclude_paths: Sequence[PathPattern] = (),
        websocket_policy: Literal["refuse", "redirect"] = "refuse",
        websocket_denial_response: bool = False,
    ) -> None:
        if status_code not in (307, 308):
            raise ValueError(
                f"status_code must be 307 or 308 (301 and 302 let clients turn POST into GET,"
                f" RFC 9110 §15.4), got {status_code!r}"
            )
        if https_port is not None and (
            not isinstance(https_port, int) or not 0 < https_port < 65536
        ):
            raise ValueError(f"https_port must be None or a port 1-65535, got {https_port!r}")
        if websocket_policy not in ("refuse", "redirect"):
            raise ValueError(
                f"websocket_policy must be 'refuse' or 'redirect', got {websocket_policy!r}"
            )
        self.app = app
        self._status = status_code
        self._port = https_port
        self._host = (
            None if redirect_host is None else normalise_entry(redirect_host, "redirect_host")
        )
        self._allowed = None if allowed_hosts is None else HostAllowList(allowed_hosts)
        self._exclude = PathMatcher(exclude_paths) or None
        self._redirect_ws = websocket_policy == "redirect"
        self._denial_response = websocket_denial_response

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if (
            kind not in _SERVED
            or scope.get("scheme") in _SECURE
            or (self._exclude is not None and self._exclude.matches(scope))
        ):
            await self.app(scope, receive, send)
            return
        websocket = kind == "websocket"
        if websocket and not self._redirect_ws:
            set_outcome(scope, "forbidden")
            await refuse_handshake(
                scope, receive, send, 403, _TLS_REQUIRED, denial_response=self._denial_response
            )
            return
        location = https_location(
            scope, redirect_host=self._host, https_port=self._port, allowed=self._allowed
        )
        if location is None:
            set_outcome(scope, "forbidden")
            if websocket:
                await refuse_handshake(
                    scope, receive, send, 400, _INVALID, denial_response=self._denial_response
                )
            else:
                await send_response(send, 400, body=_INVALID)
            return
        headers = [(b"location", location.encode("latin-1"))]
        if websocket:  # the redirect policy: only a denial response can carry a Location
            await refuse_handshake(
                scope,
                receive,
                send,
                self._status,
                b"",
                headers=headers,
                content_type=None,
                denial_response=True,
            )
        else:
            await send_response(send, self._status, headers, content_type=None)
