"""Cross-site request forgery protection on Fetch Metadata (W3C Fetch Metadata Request Headers,
``Sec-Fetch-Site``), with the RFC 6454 ``Origin`` check as fallback and optional session-bound
tokens read from a header or a streamed form field."""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Awaitable, Callable, Collection, Iterable, Sequence
from typing import Any, Literal

from ._core.forms import FieldScanner, field_scanner
from ._core.headers import get_header, is_token, merge_vary
from ._core.origins import compile_origin
from ._core.outcome import set_outcome
from ._core.paths import PathMatcher, PathPattern
from ._core.problem import PROBLEM_JSON, problem_body
from ._core.proxies import request_origin
from ._core.respond import TEXT_PLAIN, refuse_handshake, send_response
from ._core.signing import KeyRing, Secret, b64encode, signing_keys
from ._types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["CSRFMiddleware", "NonBrowserPolicy", "csrf_token", "rotate_csrf_token"]

logger = logging.getLogger("middlewares.csrf")

#: What to do with an unsafe request that carries neither ``Sec-Fetch-Site`` nor ``Origin``:
#: a non-browser client (curl, a server, a mobile app) or a very old browser.
NonBrowserPolicy = Literal["allow", "token", "reject"]

#: The scope key under which the token issuer is published to the app (token mode only).
SCOPE_KEY = "middlewares.csrf"
#: The session key holding the per-session secret that tokens are bound to.
SESSION_KEY = "middlewares.csrf"

_SAFE_METHODS = ("GET", "HEAD", "OPTIONS", "TRACE")
_POLICIES = ("allow", "token", "reject")
# The longest token worth reading from a form field: ours are 16 + 1 + 43 bytes.
_MAX_TOKEN = 256
# RFC 9110 §12.5.5: the decision read these request headers, so caches must key on them.
_VARY = (b"vary", b"Sec-Fetch-Site, Origin")


def judge(
    site: bytes | None,
    origin: bytes | None,
    own_origin: Callable[[], str | None],
    *,
    allow_same_site: bool,
    trusted: Callable[[bytes], bool],
) -> str | None:
    """Decide whether an unsafe request may be cross-site forged; return the refusal reason,
    ``""`` when the request carries neither header, or None when it may proceed.

    The order of Go 1.25's ``CrossOriginProtection``: ``Sec-Fetch-Site`` decides when present
    (``same-origin`` and ``none``, a user-typed navigation, pass); without it, ``Origin`` must be
    the request's own origin (scheme, host and port) as the proxy model resolved it. A trusted
    origin passes either way.

    Args:
        site: The ``Sec-Fetch-Site`` value, or None.
        origin: The ``Origin`` value, or None.
        own_origin: Returns the request's own origin (asked only when ``Origin`` decides).
        allow_same_site: Let ``same-site`` (a sibling subdomain) through.
        trusted: Whether an ``Origin`` value is one of the trusted origins.
    """
    if site is not None:
        if site == b"same-origin" or site == b"none":
            return None
        if site == b"same-site" and allow_same_site:
            return None
        if origin is not None and trusted(origin):
            return None
        if site == b"cross-site":
            return "cross-site request (Sec-Fetch-Site: cross-site)"
        if site == b"same-site":
            return "request from another origin of the same site (Sec-Fetch-Site: same-site)"
        return "Sec-Fetch-Site has a value browsers never send"
    if origin is None:
        return ""
    if origin == b"null":
        # Fetch §3.2.5: sandboxed frames, file: pages and redirects across origins send "null".
        return "Origin is 'null' (a sandboxed frame, a local file or a cross-origin redirect)"
    own = own_origin()
    if (own is not None and origin == own.encode("latin-1")) or trusted(origin):
        return None
    return "Origin does not match the request's own origin"


def _issue(ring: KeyRing, secret: str) -> str:
    nonce = b64encode(os.urandom(12))
    signature = ring.sign(nonce + b":" + secret.encode("ascii")).rpartition(b".")[2]
    return (nonce + b"." + signature).decode("ascii")


def token_matches(ring: KeyRing, secret: str, token: bytes) -> bool:
    """Whether ``token`` was issued for the session secret ``secret`` under a key of ``ring``.

    A token is a random nonce and the HMAC of nonce and secret: every page gets a different
    token (nothing for BREACH to compare), none expires before the session does, and any
    worker holding the key ring verifies it.
    """
    nonce, sep, signature = token.partition(b".")
    if not sep or not nonce or not signature or not secret.isascii():
        return False
    return ring.unsign(nonce + b":" + secret.encode("ascii") + b"." + signature) is not None


class _Tokens:
    """What ``csrf_token`` needs from the middleware: its key ring."""

    __slots__ = ("ring",)

    def __init__(self, ring: KeyRing) -> None:
        self.ring = ring


def _session(scope: Scope) -> Any:
    session = scope.get("session")
    if session is None:
        raise RuntimeError(
            "CSRF tokens are bound to the session: add SessionMiddleware outside CSRFMiddleware"
        )
    return session


def csrf_token(scope: Scope) -> str:
    """Return a CSRF token for the request's session, to put in a form field or a header.

    The session gets a random secret the first time (so the response saves the session); each
    call returns a different token for the same secret. Call it from the app (``request.scope``
    in Starlette and FastAPI) inside a ``CSRFMiddleware`` given a ``secret``.

    Raises:
        RuntimeError: no ``CSRFMiddleware`` with a ``secret`` or no session is in the stack.
    """
    tokens = scope.get(SCOPE_KEY)
    if not isinstance(tokens, _Tokens):
        raise RuntimeError("csrf_token() needs CSRFMiddleware with a secret around the app")
    session = _session(scope)
    secret = session.get(SESSION_KEY)
    if not isinstance(secret, str):
        secret = session[SESSION_KEY] = b64encode(os.urandom(32)).decode("ascii")
    return _issue(tokens.ring, secret)


def rotate_csrf_token(scope: Scope) -> None:
    """Invalidate every token issued for the request's session (Django's ``rotate_token``).

    Call it when the user logs in, so a token seen before the login is worthless after it; the
    next ``csrf_token`` call makes a new secret.
    """
    _session(scope).pop(SESSION_KEY, None)


def _content_length(headers: Iterable[tuple[bytes, bytes]]) -> int | None:
    value = get_header(headers, b"content-length")
    # RFC 9110 §8.6: 1*DIGIT; anything else is left to the server to refuse. Past 18 digits it
    # is over any limit (and int() refuses 4,300 digits and more).
    if value is None or not value.isdigit():
        return None
    return int(value) if len(value) <= 18 else 10**18


class CSRFMiddleware:
    """Refuse cross-site forged requests before they reach the app, for HTTP and WebSocket.

    Unsafe requests (every method but ``safe_methods``) and WebSocket handshakes are checked
    with Fetch Metadata, as Go 1.25, Rails 8.2 and OWASP recommend: ``Sec-Fetch-Site:
    same-origin`` or ``none`` passes, ``cross-site`` is refused and ``same-site`` too unless
    ``allow_same_site``. Without ``Sec-Fetch-Site`` (older browsers, plain-HTTP sites) the
    ``Origin`` header must equal the request's own origin, from the scheme and host the proxy
    model resolved; ``Origin: null`` is refused. Requests with neither header follow
    ``non_browser``. Cookies play no part, so a cookie-less cross-site POST (login CSRF) is
    refused like any other. With a ``secret``, session-bound tokens can be required as well,
    read from ``header_name`` or from the ``form_field`` of a form body streamed without
    consuming it. A refusal is 403 with a one-line reason, logged at debug.

    Args:
        app: The ASGI application to wrap.
        secret: Signing key for tokens, or a list of keys (the first signs, all verify, for
            rotation). Only needed for ``require_token`` or ``non_browser="token"``; the same
            on every worker, so that tokens stay valid across workers and restarts. A key
            shorter than 32 bytes draws a ``UserWarning``, as ``SessionMiddleware``'s does.
        trusted_origins: Origins whose requests pass even when cross-site
            (``"https://app.example.com"``, ``"https://*.example.com"``), validated like
            ``CORSMiddleware``'s ``allow_origins``; ``"*"`` and ``"null"`` are refused.
        allow_same_site: Let ``Sec-Fetch-Site: same-site`` requests (from sibling subdomains,
            which are other origins) through. Defaults to False.
        non_browser: For unsafe requests carrying neither ``Sec-Fetch-Site`` nor ``Origin``:
            ``"allow"`` (default, as Go: browsers always send one of them, so these are API
            clients), ``"token"`` (require a valid token) or ``"reject"``.
        require_token: Also require a valid token on every checked request that passes the
            Fetch Metadata check. Defaults to False.
        safe_methods: Methods never checked. Defaults to starlette-csrf's
            ``{"GET", "HEAD", "OPTIONS", "TRACE"}``.
        exclude_paths: Paths never checked (webhooks), as ``PathMatcher`` patterns: exact, a
            ``/*`` subtree, a route template or a compiled regex matched in full.
        exempt_urls: starlette-csrf's name for more of the same patterns.
        header_name: Header carrying the token. Defaults to ``"x-csrftoken"``.
        form_field: Form field carrying the token when the header is absent, in urlencoded and
            multipart bodies; None reads headers only. Defaults to ``"csrftoken"``.
        max_body_size: Bytes of body read, and held for the app, while looking for the form
            field; a longer body gets 413. Defaults to 10 MiB.
        problem_details: Refuse with an RFC 9457 ``application/problem+json`` body instead of
            plain text.
        check_websocket: Check WebSocket handshakes too (cross-site WebSocket hijacking).
            Defaults to True.
        websocket_denial_response: Refuse a handshake with a 403 denial response carrying the
            reason, where the server offers the extension, instead of a close before accept
            (which every server answers with a bare 403). Off by default: uvicorn's default
            WebSocket stack logs an ERROR line per denial response, which a hostile page could
            use to flood alerting.

    Raises:
        ValueError: an invalid origin, method, header or field name, size, policy, or tokens
            asked for without a ``secret``.
        TypeError: a list argument was given as a single string.
    """

    __slots__ = (
        "_check_websocket",
        "_denial_response",
        "_exclude",
        "_field",
        "_header",
        "_max_body",
        "_non_browser",
        "_problem",
        "_require_token",
        "_safe",
        "_same_site",
        "_tokens",
        "_trusted",
        "_trusted_pattern",
        "app",
    )

    def __init__(
        self,
        app: ASGIApp,
        *,
        secret: Secret | Sequence[Secret] | None = None,
        trusted_origins: Collection[str] = (),
        allow_same_site: bool = False,
        non_browser: NonBrowserPolicy = "allow",
        require_token: bool = False,
        safe_methods: Collection[str] = _SAFE_METHODS,
        exclude_paths: Iterable[PathPattern] = (),
        exempt_urls: Iterable[PathPattern] = (),
        header_name: str = "x-csrftoken",
        form_field: str | None = "csrftoken",
        max_body_size: int = 10 * 1024 * 1024,
        problem_details: bool = False,
        check_websocket: bool = True,
        websocket_denial_response: bool = False,
    ) -> None:
        for name, value in (("trusted_origins", trusted_origins), ("safe_methods", safe_methods)):
            if isinstance(value, (str, bytes)):
                raise TypeError(f"{name} must be a list of strings, got the string {value!r}")
        exact: set[bytes] = set()
        sources: list[str] = []
        for entry in trusted_origins:
            if not isinstance(entry, str):
                raise TypeError(f"trusted_origins entries must be strings, got {entry!r}")
            if entry in ("*", "null"):
                raise ValueError(
                    f"trusted_origins entry {entry!r} would trust pages anyone can make;"
                    " list the origins you trust"
                )
            origin, source = compile_origin(entry, "trusted_origins")
            if origin is not None:
                exact.add(origin.encode("latin-1"))
            else:
                sources.append(f"(?:{source})")
        for method in safe_methods:
            if not isinstance(method, str) or not is_token(method):
                raise ValueError(f"safe_methods entries must be HTTP methods, got {method!r}")
        if non_browser not in _POLICIES:
            raise ValueError(
                f"non_browser must be 'allow', 'token' or 'reject', got {non_browser!r}"
            )
        if not isinstance(header_name, str) or not is_token(header_name):
            raise ValueError(f"header_name must be an HTTP header name, got {header_name!r}")
        if form_field is not None and (not isinstance(form_field, str) or not form_field):
            raise ValueError(f"form_field must be a non-empty string or None, got {form_field!r}")
        if isinstance(max_body_size, bool) or not isinstance(max_body_size, int):
            raise ValueError(f"max_body_size must be a number of bytes, got {max_body_size!r}")
        if max_body_size < 0:
            raise ValueError(f"max_body_size must be >= 0, got {max_body_size!r}")
        uses_tokens = require_token or non_browser == "token"
        if uses_tokens and secret is None:
            raise ValueError(
                "tokens need a secret (the same on every worker): pass secret=..., or drop"
                " require_token and non_browser='token'"
            )

        self.app = app
        self._tokens = (
            _Tokens(KeyRing(signing_keys("secret", secret), salt=b"middlewares.csrf"))
            if secret is not None
            else None
        )
        self._trusted = frozenset(exact)
        self._trusted_pattern = re.compile("|".join(sources)) if sources else None
        self._same_site = allow_same_site
        self._non_browser = non_browser
        self._require_token = require_token
        # Methods are case-sensitive (RFC 9110 §9.1); configuration is not.
        self._safe = frozenset(m.upper() for m in safe_methods)
        exempt = [*exclude_paths, *exempt_urls]
        matcher = PathMatcher(exempt)
        self._exclude = matcher if matcher else None
        if exempt:
            # Written down once at startup, so a review of the logs shows what is unprotected.
            logger.info(
                "CSRF: requests to these paths are not checked: %s",
                ", ".join(p.pattern if isinstance(p, re.Pattern) else p for p in exempt),
            )
        self._header = header_name.lower().encode("latin-1")
        self._field = form_field.encode("utf-8") if form_field is not None else None
        self._max_body = max_body_size
        self._problem = problem_details
        self._check_websocket = check_websocket
        self._denial_response = websocket_denial_response

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            if scope.get("method", "GET") in self._safe:
                if self._tokens is not None:
                    scope[SCOPE_KEY] = self._tokens
                await self.app(scope, receive, send)
                return
        elif kind != "websocket" or not self._check_websocket:
            await self.app(scope, receive, send)
            return
        if self._exclude is not None and self._exclude.matches(scope):
            await self.app(scope, receive, send)
            return
        if self._tokens is not None:
            scope[SCOPE_KEY] = self._tokens
        site = origin = None
        for key, value in scope["headers"]:
            if key == b"sec-fetch-site":
                # A browser sends one; two are not a browser's (and not a value it sends).
                site = value if site is None else b"duplicated"
            elif key == b"origin" and origin is None:
                origin = value
        # What every same-origin form and fetch of a current browser sends, decided inline.
        reason = (
            None
            if site == b"same-origin"
            else judge(
                site,
                origin,
                lambda: request_origin(scope),
                allow_same_site=self._same_site,
                trusted=self._is_trusted,
            )
        )
        need_token = self._require_token
        if reason == "":
            if self._non_browser == "reject":
                reason = "neither Sec-Fetch-Site nor Origin: requests without them are refused"
            else:
                reason = None
                need_token = need_token or self._non_browser == "token"
        tokens = self._tokens
        if reason is None and need_token and tokens is not None:
            reason, receive = await self._check_token(scope, receive, send, tokens.ring)
            if reason == "":
                return  # answered already (413) or the client left
        if reason is not None:
            await self._refuse(scope, receive, send, reason, site, origin)
            return
        if kind == "websocket":
            await self.app(scope, receive, send)
            return

        # A plain function returning send's awaitable: no coroutine of its own per message.
        def send_with_vary(message: Message) -> Awaitable[None]:
            if message["type"] == "http.response.start":
                message["headers"] = with_vary(message.get("headers", ()))
            return send(message)

        await self.app(scope, receive, send_with_vary)

    def _is_trusted(self, origin: bytes) -> bool:
        if origin in self._trusted:
            return True
        pattern = self._trusted_pattern
        return pattern is not None and pattern.fullmatch(origin.decode("latin-1")) is not None

    async def _check_token(
        self, scope: Scope, receive: Receive, send: Send, ring: KeyRing
    ) -> tuple[str | None, Receive]:
        """Verify the request's token; return the refusal reason (None: valid; ``""``: the
        request was answered here) and the ``receive`` the app must use."""
        secret = _session(scope).get(SESSION_KEY)
        headers = scope["headers"]
        token = get_header(headers, self._header)
        if token is None and self._field is not None and scope["type"] == "http":
            scanner = field_scanner(
                get_header(headers, b"content-type") or b"", self._field, max_value=_MAX_TOKEN
            )
            if scanner is not None:
                length = _content_length(headers)
                if length is not None and length > self._max_body:
                    await self._too_large(scope, send)
                    return "", receive
                token, received, problem = await self._read_field(scanner, receive)
                if problem == "too_large":
                    await self._too_large(scope, send)
                    return "", receive
                if problem == "disconnect":
                    set_outcome(scope, "disconnect")
                    return "", receive
                receive = _replaying(received, receive)
        if token is None:
            return "the CSRF token is missing", receive
        if not isinstance(secret, str) or not token_matches(ring, secret, token):
            return "the CSRF token is not valid for this session", receive
        return None, receive

    async def _read_field(
        self, scanner: FieldScanner, receive: Receive
    ) -> tuple[bytes | None, list[Message], str | None]:
        """Read body messages until the form field is found or the body ends; return the
        field's value, every message read (for the app) and the problem that stopped the
        read, if any."""
        received: list[Message] = []
        size = 0
        while True:
            message = await receive()
            received.append(message)
            if message["type"] != "http.request":
                return None, received, "disconnect"
            body = message.get("body", b"")
            size += len(body)
            if size > self._max_body:
                return None, received, "too_large"
            more = message.get("more_body", False)
            value = scanner.feed(body, final=not more)
            if value is not None or not more:
                return value, received, None

    async def _too_large(self, scope: Scope, send: Send) -> None:
        set_outcome(scope, "too_large")
        logger.debug("CSRF: form body over max_body_size=%d refused", self._max_body)
        # The rest of the body is not read: the connection cannot be reused.
        await send_response(send, 413, [(b"connection", b"close")], b"Request body too large")

    async def _refuse(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        reason: str,
        site: bytes | None,
        origin: bytes | None,
    ) -> None:
        set_outcome(scope, "forbidden")
        if logger.isEnabledFor(logging.DEBUG):
            # %r escapes what the client sent: no forged log lines from CR/LF in headers.
            logger.debug(
                "CSRF: refused %s %r: %s (Sec-Fetch-Site %r, Origin %r)",
                scope.get("method", "WebSocket"),
                scope.get("path", ""),
                reason,
                None if site is None else site.decode("latin-1"),
                None if origin is None else origin.decode("latin-1"),
            )
        text = f"Forbidden: {reason}"
        if self._problem:
            body, content_type = problem_body(403, "Forbidden", text), PROBLEM_JSON
        else:
            body, content_type = text.encode("ascii"), TEXT_PLAIN
        if scope["type"] == "websocket":
            await refuse_handshake(
                scope,
                receive,
                send,
                403,
                body,
                content_type=content_type,
                denial_response=self._denial_response,
            )
            return
        await send_response(send, 403, [_VARY], body, content_type=content_type)


def with_vary(headers: Iterable[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """A new header list: ``headers`` with ``Sec-Fetch-Site`` and ``Origin`` merged into
    ``Vary``; the app's list is never edited in place."""
    raw = list(headers)
    for key, _ in raw:
        if key == b"vary" or key.lower() == b"vary":
            merge_vary(raw, b"Sec-Fetch-Site")
            merge_vary(raw, b"Origin")
            return raw
    raw.append(_VARY)
    return raw


def _replaying(received: list[Message], receive: Receive) -> Receive:
    """A ``receive`` that hands out ``received`` (the very same messages) before asking the
    server for more."""
    pending = list(reversed(received))

    async def receive_replayed() -> Message:
        if pending:
            return pending.pop()
        return await receive()

    return receive_replayed
