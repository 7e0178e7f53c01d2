"""Cross-origin resource sharing: the Fetch standard's CORS protocol (§3.2), and the RFC 6455
§10.2 ``Origin`` check for WebSocket handshakes."""

from __future__ import annotations

import inspect
import logging
import re
import warnings
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Collection, Iterable, Sequence

from ._core.headers import get_header, is_token, merge_vary, set_header, split_list
from ._core.origins import DEFAULT_PORTS, compile_origin
from ._core.paths import PathMatcher, PathPattern
from ._core.respond import refuse_handshake, send_response, send_server_error
from ._types import ASGIApp, Message, RawHeaders, Receive, Scope, Send

__all__ = ["ALL_METHODS", "SAFELISTED_HEADERS", "CORSMiddleware", "OriginPredicate"]

logger = logging.getLogger("middlewares.cors")

#: What ``allow_methods=["*"]`` stands for (the same list as Starlette's).
ALL_METHODS = ("DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", "QUERY")
#: Request headers every preflight accepts, as Starlette does (Fetch §2.2.2 CORS-safelisted
#: request-header names; Starlette accepts them whatever their value).
SAFELISTED_HEADERS = ("Accept", "Accept-Language", "Content-Language", "Content-Type")

#: Decides whether an origin not in ``allow_origins`` may read responses: ``origin -> bool``,
#: sync or async. It sees nothing but the serialised origin, so its answer can be cached and
#: the responses only vary on ``Origin``.
OriginPredicate = Callable[[str], bool | Awaitable[bool]]


_ACAO = b"access-control-allow-origin"
_ACAC = b"access-control-allow-credentials"
_ACEH = b"access-control-expose-headers"
_ACAM = b"access-control-allow-methods"
_ACAH = b"access-control-allow-headers"
_ACMA = b"access-control-max-age"
_ACAPN = b"access-control-allow-private-network"
_ACRM = b"access-control-request-method"
_ACRH = b"access-control-request-headers"
_ACRPN = b"access-control-request-private-network"
_VARY_ORIGIN = (b"vary", b"Origin")
# Fetch §3.2.3: a preflight's answer depends on the method, headers and private-network
# request as well as the origin (Starlette PR #3517).
_PREFLIGHT_VARY = (
    b"vary",
    b"Origin, Access-Control-Request-Method, Access-Control-Request-Headers, "
    b"Access-Control-Request-Private-Network",
)
# Response fields this middleware sets; an app's own copy is replaced, never duplicated.
_OWNED = frozenset({b"vary", _ACAO, _ACAC, _ACEH})
_TEXT_PLAIN = (b"content-type", b"text/plain; charset=utf-8")
_PREFLIGHT_OK = b"OK"
_WEBSOCKET_REFUSED = b"WebSocket origin not allowed"


def preflight_failures(
    method: bytes,
    requested_headers: Iterable[bytes],
    private_network: bool,
    *,
    origin_allowed: bool,
    methods: Collection[bytes],
    headers: Collection[bytes] | None,
    allow_private_network: bool,
) -> list[str]:
    """Return what a preflight asks for that the policy refuses, in Starlette's order.

    ``requested_headers`` are the raw ``Access-Control-Request-Headers`` field values; they are
    split tolerantly (empty members, spaces and case ignored). ``headers`` holds the allowed
    lower-case names, or None when every header is allowed. ``method`` is compared exactly
    (Fetch §2.2.1: methods are case-sensitive; browsers upper-case the standard ones).
    """
    failures = [] if origin_allowed else ["origin"]
    if method not in methods:
        failures.append("method")
    if headers is not None:
        for value in requested_headers:
            if any(member.lower() not in headers for member in split_list(value)):
                failures.append("headers")
                break
    if private_network and not allow_private_network:
        failures.append("private-network")
    return failures


def with_cors_headers(
    headers: Iterable[tuple[bytes, bytes]], grants: Sequence[tuple[bytes, bytes]]
) -> RawHeaders:
    """Return a new header list: ``headers`` plus ``grants`` (replacing the app's own copies)
    and ``Origin`` merged into ``Vary``. The app's list is never edited in place."""
    raw = list(headers)
    for key, _ in raw:
        if key.lower() in _OWNED:
            break
    else:
        raw.extend(grants)
        raw.append(_VARY_ORIGIN)
        return raw
    for name, value in grants:
        set_header(raw, name, value)
    merge_vary(raw, b"Origin")
    return raw


class CORSMiddleware:
    """Answer CORS preflights and let allowed origins read responses, for HTTP and WebSocket.

    A drop-in for Starlette's ``CORSMiddleware``: the same arguments, defaults and responses
    (preflight ``200 OK``; ``400 Disallowed CORS origin, method, headers, private-network``),
    with origins validated when the middleware is built, label-aware ``*.`` wildcards, an
    optional origin predicate, ``Vary`` merged on every response, header lists parsed
    tolerantly, CORS headers on the 500 sent when the app raises, and the same origin policy
    guarding WebSocket handshakes against cross-site hijacking.

    Args:
        app: The ASGI application to wrap.
        allow_origins: Origins that may read responses: ``"https://example.com"``,
            ``"https://*.example.com"`` (any subdomain, not the apex),
            ``"http://localhost:*"`` (any port), ``"null"``, or ``"*"`` for any origin.
            Validated and normalised here; a malformed entry is a ``ValueError``.
        allow_methods: Methods a preflight may ask for, case-insensitive; ``["*"]`` is
            ``ALL_METHODS``. Defaults to ``("GET",)``.
        allow_headers: Request headers a preflight may ask for beyond ``SAFELISTED_HEADERS``,
            case-insensitive; ``["*"]`` mirrors whatever is asked.
        allow_credentials: Send ``Access-Control-Allow-Credentials: true`` to allowed origins,
            so browsers send cookies and expose credentialed responses. With
            ``allow_origins=["*"]`` the request's origin is reflected (never ``null``) and a
            ``UserWarning`` is issued.
        allow_origin_regex: A regular expression (string or compiled) an origin must match in
            full to be allowed.
        allow_private_network: Answer Private Network Access preflights with
            ``Access-Control-Allow-Private-Network: true``; otherwise they get 400.
        expose_headers: Response headers scripts of allowed origins may read.
        max_age: Seconds browsers may cache a preflight answer (Chromium caps it at 7200).
        allow_origin_predicate: Called with the origin (``"https://a.example"``) when no entry
            above allows it; returns a bool, or an awaitable of one. For origins kept in a
            database.
        predicate_cache_size: How many predicate answers to keep (least recently used ones
            are dropped); 0 asks the predicate on every request.
        check_websocket_origin: Refuse WebSocket handshakes whose ``Origin`` is neither
            allowed nor the server's own host, before the app can accept them, with a close
            before accept, which every server answers with HTTP 403. Handshakes without
            ``Origin`` (non-browser clients) pass.
        websocket_denial_response: Refuse with a ``websocket.http.response`` 403 and a text
            body instead, where the server offers that extension. Off by default: uvicorn's
            default WebSocket stack logs an ERROR line per denial response, which lets anyone
            flood the error logs and alerting.
        exclude_paths: Paths passed to the app untouched (see ``PathMatcher``).

    Raises:
        ValueError: an origin, method, header name, ``max_age`` or path pattern is invalid.
        TypeError: a list argument was given as a single string.
    """

    __slots__ = (
        "_allow_all",
        "_allow_private_network",
        "_any_origin_grants",
        "_check_websocket",
        "_credentials",
        "_denial_response",
        "_exclude",
        "_grants",
        "_headers",
        "_methods",
        "_pattern",
        "_predicate",
        "_predicate_cache",
        "_predicate_cache_size",
        "_preflight_headers",
        "_preflight_ok",
        "_shared_grants",
        "app",
    )

    def __init__(
        self,
        app: ASGIApp,
        *,
        allow_origins: Collection[str] = (),
        allow_methods: Collection[str] = ("GET",),
        allow_headers: Collection[str] = (),
        allow_credentials: bool = False,
        allow_origin_regex: str | re.Pattern[str] | None = None,
        allow_private_network: bool = False,
        expose_headers: Collection[str] = (),
        max_age: int = 600,
        allow_origin_predicate: OriginPredicate | None = None,
        predicate_cache_size: int = 1024,
        check_websocket_origin: bool = True,
        websocket_denial_response: bool = False,
        exclude_paths: Iterable[PathPattern] = (),
    ) -> None:
        for name, value in (
            ("allow_origins", allow_origins),
            ("allow_methods", allow_methods),
            ("allow_headers", allow_headers),
            ("expose_headers", expose_headers),
        ):
            if isinstance(value, (str, bytes)):
                raise TypeError(f"{name} must be a list of strings, got the string {value!r}")
        if not isinstance(max_age, int) or isinstance(max_age, bool) or max_age < 0:
            raise ValueError(f"max_age must be a whole number of seconds >= 0, got {max_age!r}")
        if not isinstance(predicate_cache_size, int) or predicate_cache_size < 0:
            raise ValueError(
                f"predicate_cache_size must be an integer >= 0, got {predicate_cache_size!r}"
            )

        allow_all = "*" in allow_origins
        exact: list[str] = []
        sources: list[str] = []
        for entry in allow_origins:
            if entry == "*":
                continue
            if not isinstance(entry, str):
                raise TypeError(f"allow_origins entries must be strings, got {entry!r}")
            origin, source = compile_origin(entry)
            if origin is not None:
                exact.append(origin)
            else:
                sources.append(f"(?:{source})")
        if allow_origin_regex is not None:
            regex = (
                allow_origin_regex.pattern
                if isinstance(allow_origin_regex, re.Pattern)
                else allow_origin_regex
            )
            try:
                re.compile(regex)
            except re.error as error:
                raise ValueError(
                    f"allow_origin_regex is not a valid regular expression: {error}"
                ) from None
            sources.append(f"(?:{regex})")
        if allow_all and allow_credentials:
            warnings.warn(
                "allow_origins=['*'] with allow_credentials=True lets every website make"
                " credentialed requests and read the answers: the request's Origin is reflected"
                " (except 'null'). List the trusted origins instead.",
                UserWarning,
                stacklevel=2,
            )

        methods = ALL_METHODS if "*" in allow_methods else tuple(allow_methods)
        for method in methods:
            if not isinstance(method, str) or not is_token(method):
                raise ValueError(f"allow_methods entries must be HTTP methods, got {method!r}")
        # Configuration is case-insensitive; the wire is not (Fetch §2.2.1), and browsers
        # upper-case DELETE/GET/HEAD/OPTIONS/POST/PUT before asking.
        methods = tuple(dict.fromkeys(m.upper() for m in methods))
        allow_all_headers = "*" in allow_headers
        listed: dict[str, str] = {}
        for header in (*SAFELISTED_HEADERS, *allow_headers):
            if header == "*":
                continue
            if not isinstance(header, str) or not is_token(header):
                raise ValueError(f"allow_headers entries must be header names, got {header!r}")
            listed.setdefault(header.lower(), header)
        for header in expose_headers:
            if not isinstance(header, str) or not is_token(header):
                raise ValueError(f"expose_headers entries must be header names, got {header!r}")

        shared: list[tuple[bytes, bytes]] = []
        if allow_credentials:
            shared.append((_ACAC, b"true"))
        if expose_headers:
            shared.append((_ACEH, ", ".join(expose_headers).encode("latin-1")))
        preflight = [_PREFLIGHT_VARY, (_ACAM, ", ".join(methods).encode("latin-1"))]
        preflight.append((_ACMA, str(max_age).encode("ascii")))
        if not allow_all_headers:
            # Starlette's spelling and order, so responses are byte-identical.
            allowed = ", ".join(sorted(listed.values()))
            preflight.append((_ACAH, allowed.encode("latin-1")))

        self.app = app
        self._allow_all = allow_all
        self._credentials = allow_credentials
        self._pattern = re.compile("|".join(sources)) if sources else None
        self._predicate = allow_origin_predicate
        self._predicate_cache: OrderedDict[str, bool] = OrderedDict()
        self._predicate_cache_size = predicate_cache_size
        self._methods = frozenset(m.encode("latin-1") for m in methods)
        # b"" stands for the empty members of a tolerant list ("x-a, ,x-b,"): always fine.
        self._headers = None if allow_all_headers else frozenset({b"", *map(str.encode, listed)})
        self._allow_private_network = allow_private_network
        self._shared_grants = tuple(shared)
        # Prebuilt per exact origin: the hot path is one dict lookup on the raw header bytes.
        self._grants = {
            origin.encode("latin-1"): ((_ACAO, origin.encode("latin-1")), *shared)
            for origin in exact
        }
        self._any_origin_grants = (
            ((_ACAO, b"*"), *shared) if allow_all and not allow_credentials else None
        )
        self._preflight_headers = tuple(preflight)
        credentials = ((_ACAC, b"true"),) if allow_credentials else ()
        ok_tail = (_TEXT_PLAIN, (b"content-length", str(len(_PREFLIGHT_OK)).encode("ascii")))
        self._preflight_ok = {
            raw: (*preflight, (_ACAO, raw), *credentials, *ok_tail)
            for raw in (origin.encode("latin-1") for origin in exact)
        }
        self._check_websocket = check_websocket_origin
        self._denial_response = websocket_denial_response
        matcher = PathMatcher(exclude_paths)
        self._exclude = matcher if matcher else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        exclude = self._exclude
        if kind != "http" or (exclude is not None and exclude.matches(scope)):
            if (
                kind == "websocket"
                and self._check_websocket
                and (exclude is None or not exclude.matches(scope))
            ):
                await self._guard_handshake(scope, receive, send)
            else:
                await self.app(scope, receive, send)
            return
        headers = scope["headers"]
        if scope.get("method") == "OPTIONS":
            # Fetch §3.2.2: a preflight is OPTIONS with Origin and Access-Control-Request-Method;
            # any other OPTIONS request is the app's. One pass collects what a preflight needs.
            origin = method = None
            requested: list[bytes] = []
            private_network = False
            for key, value in headers:
                name = key.lower()
                if name == b"origin":
                    if origin is None:
                        origin = value
                elif name == _ACRM:
                    if method is None:
                        method = value
                elif name == _ACRH:
                    requested.append(value)
                elif name == _ACRPN:
                    private_network = True
            if origin is not None and method is not None:
                await self._answer_preflight(origin, method, requested, private_network, send)
                return
        else:
            origin = get_header(headers, b"origin")
        if origin is None:
            grants: Sequence[tuple[bytes, bytes]] = ()
        else:
            found = self._grants.get(origin)
            grants = found if found is not None else await self._grants_for(origin)
        started = False

        # A plain function returning send's awaitable: no coroutine of its own per message.
        def send_with_cors(message: Message) -> Awaitable[None]:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                message["headers"] = with_cors_headers(message.get("headers", ()), grants)
            return send(message)

        try:
            await self.app(scope, receive, send_with_cors)
        except Exception:
            # Starlette #1116: the 500 an outer error handler builds carries no CORS headers,
            # so the browser reports a CORS failure instead. Send it here, then re-raise so the
            # server still logs it (it sees a response already started and sends no other).
            if not started:
                await send_server_error(send, with_cors_headers((), grants))
            raise

    async def _grants_for(self, origin: bytes) -> Sequence[tuple[bytes, bytes]]:
        """The CORS headers a simple response carries for an origin not listed exactly."""
        if self._any_origin_grants is not None:
            return self._any_origin_grants
        text = origin.decode("latin-1")
        if await self._allows(text):
            return ((_ACAO, origin), *self._shared_grants)
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("CORS: origin %r not allowed; no CORS headers sent", text)
        return ()

    async def _allows(self, origin: str) -> bool:
        """Whether ``origin`` (as sent, and not listed exactly: those are prebuilt) may read
        responses."""
        if self._allow_all:
            # Reaching here means credentials, where browsers refuse a literal "*" (Fetch
            # §3.2.5), so the origin is reflected; "null" (sandboxed iframes, file: pages,
            # cross-origin redirects) only when listed, and listed origins never get here.
            return origin != "null"
        if self._pattern is not None and self._pattern.fullmatch(origin):
            return True
        if self._predicate is None:
            return False
        cache = self._predicate_cache
        if origin in cache:
            cache.move_to_end(origin)
            return cache[origin]
        answer = self._predicate(origin)
        if inspect.isawaitable(answer):
            answer = await answer
        verdict = bool(answer)
        if self._predicate_cache_size:
            cache[origin] = verdict
            if len(cache) > self._predicate_cache_size:
                cache.popitem(last=False)
        return verdict

    async def _answer_preflight(
        self,
        origin: bytes,
        method: bytes,
        requested: list[bytes],
        private_network: bool,
        send: Send,
    ) -> None:
        """Fetch §3.2.3 CORS-preflight fetch: answer without calling the app."""
        allowed_headers = self._headers
        ready = self._preflight_ok.get(origin)
        if (
            ready is not None
            and not private_network
            and method in self._methods
            and allowed_headers is not None
            and all(
                allowed_headers.issuperset([m.strip(b" \t") for m in v.lower().split(b",")])
                for v in requested
            )
        ):
            # The common case, fully prebuilt: a listed origin asking for allowed things.
            await send({"type": "http.response.start", "status": 200, "headers": list(ready)})
            await send({"type": "http.response.body", "body": _PREFLIGHT_OK})
            return
        response = list(self._preflight_headers)
        if self._any_origin_grants is not None:
            allowed = True
            response.append((_ACAO, b"*"))
        else:
            allowed = origin in self._grants or await self._allows(origin.decode("latin-1"))
            if allowed:
                response.append((_ACAO, origin))
                if self._credentials:
                    response.append((_ACAC, b"true"))
        if allowed_headers is None and requested:
            # Mirror what was asked: with credentials a literal "*" would not work (Fetch §3.2.5).
            response.append((_ACAH, b", ".join(requested)))
        if private_network and self._allow_private_network:
            response.append((_ACAPN, b"true"))
        failures = preflight_failures(
            method,
            requested,
            private_network,
            origin_allowed=allowed,
            methods=self._methods,
            headers=allowed_headers,
            allow_private_network=self._allow_private_network,
        )
        if not failures:
            await send_response(send, 200, response, _PREFLIGHT_OK)
            return
        if logger.isEnabledFor(logging.DEBUG):
            refused = [
                member.decode("latin-1")
                for value in requested
                for member in split_list(value)
                if allowed_headers is not None and member.lower() not in allowed_headers
            ]
            logger.debug(
                "CORS preflight refused (%s): origin %r, method %r, refused headers %r,"
                " private network %s",
                ", ".join(failures),
                origin.decode("latin-1"),
                method.decode("latin-1"),
                refused,
                private_network,
            )
        body = ("Disallowed CORS " + ", ".join(failures)).encode("ascii")
        await send_response(send, 400, response, body)

    async def _guard_handshake(self, scope: Scope, receive: Receive, send: Send) -> None:
        """RFC 6455 §10.2: browsers send ``Origin`` on handshakes but enforce nothing; the
        server must refuse the origins it does not trust before the socket opens."""
        origin = get_header(scope["headers"], b"origin")
        if (
            origin is None
            or origin in self._grants
            or self._any_origin_grants is not None
            or same_host(origin, get_header(scope["headers"], b"host"))
            or await self._allows(origin.decode("latin-1"))
        ):
            await self.app(scope, receive, send)
            return
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug(
                "CORS: WebSocket handshake from origin %r refused", origin.decode("latin-1")
            )
        await refuse_handshake(
            scope, receive, send, 403, _WEBSOCKET_REFUSED, denial_response=self._denial_response
        )


def same_host(origin: bytes, host: bytes | None) -> bool:
    """Whether ``origin``'s host and port are the request's ``Host`` (a same-site handshake).

    The scheme is not compared: behind a TLS-terminating proxy the app sees ``ws`` for a page
    served over ``https``. A browser always sets ``Host`` itself, so a foreign page cannot fake
    the match.
    """
    if host is None:
        return False
    scheme, separator, authority = origin.partition(b"://")
    if not separator:
        return False
    host = host.lower()
    if authority == host:
        return True
    default = DEFAULT_PORTS.get(scheme.decode("latin-1"))
    return default is not None and host == authority + b":" + default.encode("ascii")
