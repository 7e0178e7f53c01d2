"""Rate limiting with the generic cell rate algorithm (GCRA) and the IETF ``RateLimit`` /
``RateLimit-Policy`` header fields (draft-ietf-httpapi-ratelimit-headers-10, RFC 9651 lists)."""

from __future__ import annotations

import functools
import hashlib
import inspect
import ipaddress
import logging
import math
import re
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Literal, NamedTuple, Protocol

import anyio

from ._core.headers import is_token
from ._core.outcome import set_outcome
from ._core.paths import PathMatcher, PathPattern, PathTable
from ._core.problem import PROBLEM_JSON, problem_body
from ._core.proxies import client_host
from ._core.respond import refuse_handshake, send_response
from ._types import ASGIApp, Message, RawHeaders, Receive, Scope, Send

__all__ = [
    "SCOPE_KEY",
    "KeyFunc",
    "PolicyState",
    "RateLimit",
    "RateLimitDecision",
    "RateLimitMiddleware",
    "RateLimitStore",
    "RateLimitStoreError",
    "charge_limits",
    "group_address",
    "header_key",
    "session_key",
]

logger = logging.getLogger("middlewares.rate_limit")

#: The scope key under which the decision (a `RateLimitDecision`) is published.
SCOPE_KEY = "middlewares.rate_limit"

#: Returns the key requests are counted under, sync or async; None means "the client address".
KeyFunc = Callable[[Scope], str | Awaitable[str | None] | None]

_UNITS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}
_RATE = re.compile(
    r"\s*(\d+)\s*(?:/|\s+per\s+)\s*(\d+)?\s*(second|minute|hour|day)s?\s*", re.IGNORECASE
)
# RFC 9651 §3.3.3 sf-string: printable ASCII; '"' and '\' are escaped.
_SF_STRING = re.compile(r"[\x20-\x7e]*")
# Keys longer than this (a long API key, a user's callable) are stored as a digest.
_MAX_KEY = 128


class RateLimit:
    """One rate-limit policy: a quota per window, enforced with GCRA or a fixed window.

    GCRA (the default) keeps one number per client, the theoretical arrival time (TAT): each
    request moves it ``window / quota`` seconds later, and a request is refused when that would
    put it more than ``burst`` requests' worth ahead of now. With the default ``burst=quota`` a
    client may spend the whole quota at once and then one request every ``window / quota``
    seconds, so no window ever sees more than ``quota`` requests plus what refilled during it.
    ``strategy="fixed-window"`` counts requests in windows aligned to the store's clock and
    starts from zero in each, as slowapi's default does: simpler to explain, but a client may
    send ``2 * quota`` requests across a window boundary.

    Args:
        rate: ``"<quota>/<unit>"`` or ``"<quota>/<n> <unit>s"`` with unit ``second``,
            ``minute``, ``hour`` or ``day``; ``"per"`` works in place of ``/``:
            ``"100/minute"``, ``"1000 per day"``, ``"5/10 seconds"``.
        burst: Requests a client may make at once. Defaults to the quota.
        name: The policy's name in the ``RateLimit`` headers and logs. Defaults to ``rate``.
        strategy: ``"gcra"`` or ``"fixed-window"`` (which takes no ``burst``).

    Raises:
        ValueError: a malformed rate, a quota or window of 0, a burst < 1, a burst with a
            fixed window, an unknown strategy, or a name that is not printable ASCII.
    """

    __slots__ = (
        "_bucket",
        "burst",
        "fixed",
        "interval",
        "name",
        "quota",
        "strategy",
        "tolerance",
        "window",
    )

    def __init__(
        self,
        rate: str,
        *,
        burst: int | None = None,
        name: str | None = None,
        strategy: Literal["gcra", "fixed-window"] = "gcra",
    ) -> None:
        match = _RATE.fullmatch(rate) if isinstance(rate, str) else None
        if match is None:
            raise ValueError(
                f"rate must look like '100/minute', '1000 per day' or '5/10 seconds', got {rate!r}"
            )
        quota = int(match.group(1))
        window = int(match.group(2) or 1) * _UNITS[match.group(3).lower()]
        if quota < 1 or window < 1:
            raise ValueError(f"rate needs a quota and a window of at least 1, got {rate!r}")
        if strategy not in ("gcra", "fixed-window"):
            raise ValueError(f"strategy must be 'gcra' or 'fixed-window', got {strategy!r}")
        if burst is not None and strategy == "fixed-window":
            raise ValueError("burst applies to GCRA only; a fixed window allows its whole quota")
        if burst is None:
            burst = quota
        if isinstance(burst, bool) or not isinstance(burst, int) or burst < 1:
            raise ValueError(f"burst must be an integer >= 1, got {burst!r}")
        name = rate.strip() if name is None else name
        if not isinstance(name, str) or not name or not _SF_STRING.fullmatch(name):
            raise ValueError(f"name must be non-empty printable ASCII, got {name!r}")
        #: Requests allowed per window.
        self.quota = quota
        #: The window in seconds.
        self.window = window
        #: Requests allowed at once.
        self.burst = burst
        #: The policy's name in headers.
        self.name = name
        #: Seconds each request moves the theoretical arrival time (GCRA's emission interval).
        self.interval = window / quota
        #: How far ahead of now the theoretical arrival time may be, in seconds.
        self.tolerance = burst * self.interval
        #: ``"gcra"`` or ``"fixed-window"``.
        self.strategy = strategy
        self.fixed = strategy == "fixed-window"
        self._bucket = f"{quota}/{window}/{burst}/{strategy}/{name}"

    @property
    def bucket(self) -> str:
        """The id a store keeps this policy's state under. Policies with different settings, or
        bound to different routes, never share one."""
        return self._bucket

    def _bound(self, route: str) -> RateLimit:
        """This policy for the requests of one route pattern only (its own state)."""
        bound = RateLimit.__new__(RateLimit)
        for slot in RateLimit.__slots__:
            setattr(bound, slot, getattr(self, slot))
        bound._bucket = f"{route}|{self._bucket}"
        return bound

    def _scaled(self, workers: int) -> RateLimit:
        """This policy divided between ``workers`` processes: the local fallback's share."""
        scaled = RateLimit.__new__(RateLimit)
        for slot in RateLimit.__slots__:
            setattr(scaled, slot, getattr(self, slot))
        scaled.quota = max(1, self.quota // workers)
        scaled.burst = max(1, self.burst // workers)
        scaled.interval = self.window / scaled.quota
        scaled.tolerance = scaled.burst * scaled.interval
        return scaled

    def __repr__(self) -> str:
        return (
            f"RateLimit({self.quota}/{self.window}s, burst={self.burst}, name={self.name!r},"
            f" strategy={self.strategy!r})"
        )


class PolicyState(NamedTuple):
    """Where one policy stands for one client after a charge (all in seconds, from now)."""

    #: Requests the client may still make at once.
    remaining: int
    #: Until the client's allowance is whole again.
    reset: float
    #: Until this request would be allowed; 0 when it was.
    retry_after: float


class RateLimitStoreError(Exception):
    """A rate-limit store failed to answer; the middleware applies its outage policy."""


class RateLimitStore(Protocol):
    """Where rate-limit state lives: one atomic call per request.

    A store that cannot answer raises `RateLimitStoreError`. `charge_limits` holds the
    arithmetic for stores that keep the numbers themselves.
    """

    async def charge(
        self, key: str, limits: Sequence[RateLimit], cost: int
    ) -> tuple[bool, Sequence[PolicyState]]:
        """Charge ``cost`` requests to ``key`` under every policy, all or nothing.

        Returns whether the request is allowed and one `PolicyState` per policy, in order.
        When any policy refuses, no policy's state changes. State is kept per
        ``(key, limit.bucket)``.
        """
        ...


def charge_limits(
    values: Sequence[float | None], now: float, limits: Sequence[RateLimit], cost: int
) -> tuple[bool, list[float], list[PolicyState]]:
    """Charge several policies at once, all or nothing: the arithmetic every store shares.

    ``values`` are the numbers stored per policy (None: no state, a full allowance). For GCRA
    that is the theoretical arrival time. For a fixed window it is the window's end plus one
    interval per request counted in it, so a value from an older window reads as zero. In
    both, a value at or before ``now`` holds nothing worth keeping. Returns whether the
    request is allowed, the values to store when it is, and each policy's state.
    """
    allowed = True
    rows: list[tuple[RateLimit, float, float, float, float]] = []
    ends: list[float] = []
    for value, limit in zip(values, limits, strict=True):
        if limit.fixed:
            base = (math.floor(now / limit.window) + 1.0) * limit.window  # the window's end
            ceiling = base + limit.window
        else:
            base = now
            ceiling = now + limit.tolerance
        start = base if value is None or value < base else value
        end = start + cost * limit.interval
        if end - ceiling > 1e-9:
            allowed = False
        rows.append((limit, base, ceiling, start, end))
        ends.append(end)
    # A refused request changes nothing, so each policy reports its state without it.
    states = []
    for limit, base, ceiling, start, end in rows:
        used = end if allowed else start
        refused = end - ceiling > 1e-9
        if limit.fixed:
            reset = base - now
            retry = reset if refused else 0.0
        else:
            reset = used - now
            retry = end - ceiling if refused else 0.0
        remaining = max(0, int((ceiling - used) / limit.interval + 1e-9))
        states.append(PolicyState(remaining, reset, retry))
    return allowed, ends, states


@functools.lru_cache(maxsize=4096)
def group_address(host: str, ipv4_mask: int = 32, ipv6_mask: int = 64) -> str:
    """Return the key for a client address: the address, or its network when masked.

    IPv6 clients are grouped by ``/64`` by default, since one subscriber usually holds a whole
    /64 and can pick any address in it. IPv4-mapped IPv6 addresses count as IPv4. Strings that
    are not IP addresses (a test client's name) are returned unchanged, cut to 128 characters.

    Args:
        host: The client address, as ``scope["client"][0]`` holds it.
        ipv4_mask: Prefix length IPv4 addresses are grouped by.
        ipv6_mask: Prefix length IPv6 addresses are grouped by.
    """
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host[:_MAX_KEY]
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    mask = ipv4_mask if address.version == 4 else ipv6_mask
    if mask == address.max_prefixlen:
        return str(address)
    return str(ipaddress.ip_network((address, mask), strict=False))


def header_key(name: str) -> KeyFunc:
    """Key requests by a request header such as an API key; without it, by client address.

    The value is stored as a SHA-256 digest, so secrets never reach the store and a huge value
    costs no memory. A client can invent values, so validate keys before this middleware or
    keep an address-keyed policy beside it.

    Args:
        name: The header's name, any case: ``"X-API-Key"``.

    Raises:
        ValueError: ``name`` is not a header name.
    """
    if not is_token(name):
        raise ValueError(f"name must be a header name, got {name!r}")
    raw = name.lower().encode("ascii")

    def key_from_header(scope: Scope) -> str | None:
        for header, value in scope.get("headers", ()):
            if header == raw:
                return "h:" + hashlib.sha256(value).hexdigest()[:32]
        return None

    return key_from_header


def session_key(field: str = "user_id") -> KeyFunc:
    """Key requests by a field of the session (the signed-in user); without it, by client
    address. Needs `SessionMiddleware` outside this middleware.

    Args:
        field: The session key holding the user's id. Defaults to ``"user_id"``.
    """

    def key_from_session(scope: Scope) -> str | None:
        session = scope.get("session")
        value = session.get(field) if isinstance(session, Mapping) else None
        return None if value is None else f"s:{value}"

    return key_from_session


class RateLimitDecision(NamedTuple):
    """What the middleware decided for one request, published under ``scope[SCOPE_KEY]``.

    Attributes:
        allowed: Whether the request reached the app.
        key: The key the request was counted under.
        limits: The policies that applied, in header order.
        states: Each policy's state; empty when the store could not answer.
        retry_after: Whole seconds until the request would be allowed; 0 when it was.
        enforced: False in shadow mode, where a refused request is only logged.
        degraded: Why the store was not used: ``"fail-open"``, ``"fail-closed"``,
            ``"fallback"`` (the local bucket), or None.
    """

    allowed: bool
    key: str
    limits: tuple[RateLimit, ...]
    states: tuple[PolicyState, ...]
    retry_after: int
    enforced: bool = True
    degraded: str | None = None


def _sf_string(value: str) -> bytes:
    return ('"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"').encode("ascii")


def _seconds(value: float) -> int:
    """Delta seconds for headers: rounded up, so a client never retries too early."""
    return max(0, math.ceil(value - 1e-6))


def _policy_header(names: Sequence[bytes], limits: Sequence[RateLimit]) -> bytes:
    return b", ".join(
        b"%s;q=%d;w=%d" % (name, limit.quota, limit.window)
        for name, limit in zip(names, limits, strict=True)
    )


class _Policies:
    """The policies one request is charged, prepared once with their header values."""

    __slots__ = ("fallback", "fallback_header", "limits", "names", "policy_header")

    def __init__(self, limits: tuple[RateLimit, ...], fallback_workers: int | None) -> None:
        names = [limit.name for limit in limits]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(
                f"policies applied to one request need distinct names, {duplicates!r} repeats;"
                " pass name= to tell them apart"
            )
        self.limits = limits
        self.names = tuple(_sf_string(limit.name) for limit in limits)
        self.policy_header = _policy_header(self.names, limits)
        self.fallback: tuple[RateLimit, ...] | None = None
        self.fallback_header = b""
        if fallback_workers is not None:
            self.fallback = tuple(limit._scaled(fallback_workers) for limit in limits)
            self.fallback_header = _policy_header(self.names, self.fallback)

    def state_header(self, states: Sequence[PolicyState]) -> bytes:
        if len(states) == 1:
            (state,) = states
            return b"%s;r=%d;t=%d" % (self.names[0], state.remaining, _seconds(state.reset))
        return b", ".join(
            [
                b"%s;r=%d;t=%d" % (name, state.remaining, _seconds(state.reset))
                for name, state in zip(self.names, states, strict=True)
            ]
        )


class _Breaker:
    """Stops asking a failing store for ``cooldown`` seconds, then lets one request probe it."""

    __slots__ = ("clock", "cooldown", "degraded", "failures", "open_until")

    def __init__(self, cooldown: float, clock: Callable[[], float]) -> None:
        self.cooldown = cooldown
        self.clock = clock
        self.failures = 0  # store calls that failed
        self.degraded = 0  # requests the outage policy decided
        self.open_until = 0.0

    def should_try(self) -> bool:
        if not self.open_until:
            return True
        now = self.clock()
        if now < self.open_until:
            return False
        self.open_until = now + self.cooldown  # this request probes; the others wait
        return True

    def failed(self, error: str) -> None:
        self.failures += 1
        if not self.open_until:
            logger.warning(
                "rate limit store unavailable (%s); outage policy for %.1f s", error, self.cooldown
            )
        self.open_until = self.clock() + self.cooldown

    def succeeded(self) -> None:
        if self.open_until:
            logger.warning("rate limit store answers again; limiting resumed")
            self.open_until = 0.0


_RATELIMIT = b"ratelimit"
_RATELIMIT_POLICY = b"ratelimit-policy"
_LEGACY = (b"x-ratelimit-limit", b"x-ratelimit-remaining", b"x-ratelimit-reset")
_OWNED = frozenset((_RATELIMIT, _RATELIMIT_POLICY, *_LEGACY))


def with_rate_limit_headers(
    headers: Iterable[tuple[bytes, bytes]], added: Sequence[tuple[bytes, bytes]]
) -> RawHeaders:
    """Return a new header list with ``added``. ``RateLimit`` and ``RateLimit-Policy`` from an
    inner limiter are joined into one list each; a legacy ``X-RateLimit-*`` triple is replaced
    by ours only when ours has fewer requests remaining. Each field appears once."""
    raw = list(headers)
    inner = {key.lower(): value for key, value in raw if key.lower() in _OWNED}
    if not inner:
        raw.extend(added)
        return raw
    ours = dict(added)
    inner_remaining = inner.get(_LEGACY[1], b"").strip()
    keep_inner_legacy = (
        inner_remaining.isdigit()
        and _LEGACY[1] in ours
        and int(inner_remaining) <= int(ours[_LEGACY[1]])
    )
    for name in (_RATELIMIT, _RATELIMIT_POLICY):
        if name in inner and name in ours:
            ours[name] = inner[name] + b", " + ours[name]
    if keep_inner_legacy:
        for name in _LEGACY:
            ours.pop(name, None)
    dropped = set(ours)
    raw = [(key, value) for key, value in raw if key.lower() not in dropped]
    raw.extend(ours.items())
    return raw


class RateLimitMiddleware:
    """Refuse requests over a rate limit with 429 and tell every client where it stands.

    Each request is charged to a key (by default the client address as the trusted-proxy model
    resolved it, IPv6 grouped by /64) under every policy that applies to it: the
    ``application_limits`` plus the first ``route_limits`` entry whose path pattern matches.
    All policies are charged in one atomic store call, all or nothing: a refused request uses
    up nothing. Refused requests get ``status_code`` with an integer ``Retry-After``; every
    limited response carries ``RateLimit-Policy`` and ``RateLimit``. When the store fails or
    does not answer within ``store_timeout`` the request is let through (``fail_open``),
    refused with 503, or counted in a local fallback bucket, and a breaker keeps further
    requests off the store for ``breaker_cooldown`` seconds. WebSocket handshakes are limited
    like requests.

    Args:
        app: The ASGI application to wrap.
        application_limits: Policies charged on every request (not excluded), each with one
            allowance per key shared by all routes. ``"100/minute"`` strings or `RateLimit`.
        route_limits: Path pattern (see ``PathTable``: exact, ``/prefix/*``, route template
            ``/items/{id}``, compiled regex) to a policy or list of policies, charged on top of
            the application limits for matching requests. The first matching pattern wins, and
            each pattern has its own allowance, shared by every path it matches.
        store: Where state lives: a `MemoryRateLimitStore` (the default; one process) or a
            `RedisRateLimitStore` (every worker and machine), or anything that implements
            `RateLimitStore`.
        key_func: Returns the key to count a request under, from its scope, sync or async:
            `header_key`, `session_key` or your own. None (or the function returning None)
            means the client address.
        ipv4_mask: Prefix length IPv4 client addresses are grouped by. Defaults to 32.
        ipv6_mask: Prefix length IPv6 client addresses are grouped by. Defaults to 64.
        cost: What each request costs: an integer >= 1, or a callable of the scope returning
            one (weights).
        exclude_paths: Paths never limited (see ``PathMatcher``).
        headers_enabled: Send ``RateLimit-Policy`` and ``RateLimit`` on limited responses.
        legacy_headers: Also send ``X-RateLimit-Limit``, ``-Remaining`` and ``-Reset`` (delta
            seconds) for the policy with the fewest requests remaining.
        status_code: The status of a refusal. Defaults to 429.
        error_format: ``"text"`` (``Too Many Requests``) or ``"problem+json"`` (RFC 9457).
        fail_open: When the store fails: let the request through (True, logged and counted) or
            refuse it with 503 and ``Retry-After`` (False).
        store_timeout: Seconds a store call may take before it counts as failed; None waits
            as long as the store does. Defaults to 0.05.
        fallback_workers: Count requests in a local in-memory bucket while the store is
            unavailable, each policy divided by this number of worker processes. None (the
            default) applies ``fail_open`` instead.
        breaker_cooldown: Seconds the store is left alone after a failure before one request
            tries it again. Defaults to 1.
        shadow: Compute and log decisions without enforcing them, and send no headers: for
            rolling out a new limit.
        limit_websockets: Limit WebSocket handshakes too: a refused handshake is closed before
            accept, which the server answers with 403.
        websocket_denial_response: Refuse handshakes with ``status_code``, ``Retry-After`` and
            the ``RateLimit`` headers instead, where the server supports denial responses
            (uvicorn's default WebSocket stack logs an ERROR line for each, hence opt-in).
        clock: Monotonic clock in seconds, for the breaker; tests inject a fake one.

    Raises:
        ValueError: a malformed rate, duplicate policy names on one route, or a bad option.
        TypeError: a list argument was given as a single string.
    """

    __slots__ = (
        "_app_policies",
        "_breaker",
        "_cost",
        "_error_format",
        "_exclude",
        "_fail_open",
        "_fallback",
        "_headers",
        "_ipv4_mask",
        "_ipv6_mask",
        "_key_func",
        "_legacy",
        "_local",
        "_route_table",
        "_shadow",
        "_status",
        "_store",
        "_timeout",
        "_warned_no_client",
        "_websocket_denial",
        "_websockets",
        "app",
    )

    def __init__(
        self,
        app: ASGIApp,
        *,
        application_limits: Sequence[RateLimit | str] = (),
        route_limits: Mapping[PathPattern, RateLimit | str | Sequence[RateLimit | str]]
        | None = None,
        store: RateLimitStore | None = None,
        key_func: KeyFunc | None = None,
        ipv4_mask: int = 32,
        ipv6_mask: int = 64,
        cost: int | Callable[[Scope], int] = 1,
        exclude_paths: Iterable[PathPattern] = (),
        headers_enabled: bool = True,
        legacy_headers: bool = False,
        status_code: int = 429,
        error_format: Literal["text", "problem+json"] = "text",
        fail_open: bool = True,
        store_timeout: float | None = 0.05,
        fallback_workers: int | None = None,
        breaker_cooldown: float = 1.0,
        shadow: bool = False,
        limit_websockets: bool = True,
        websocket_denial_response: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        from .stores.rate_limit_memory import MemoryRateLimitStore

        if isinstance(application_limits, (str, RateLimit)):
            raise TypeError(
                f"application_limits must be a list of policies, got {application_limits!r}"
            )
        for name, mask, top in (("ipv4_mask", ipv4_mask, 32), ("ipv6_mask", ipv6_mask, 128)):
            if isinstance(mask, bool) or not isinstance(mask, int) or not 0 < mask <= top:
                raise ValueError(f"{name} must be an integer between 1 and {top}, got {mask!r}")
        if not callable(cost) and (isinstance(cost, bool) or not isinstance(cost, int) or cost < 1):
            raise ValueError(f"cost must be an integer >= 1 or a callable, got {cost!r}")
        if isinstance(status_code, bool) or not isinstance(status_code, int):
            raise ValueError(f"status_code must be an HTTP status, got {status_code!r}")
        if not 400 <= status_code <= 599:
            raise ValueError(f"status_code must be between 400 and 599, got {status_code!r}")
        if error_format not in ("text", "problem+json"):
            raise ValueError(f"error_format must be 'text' or 'problem+json', got {error_format!r}")
        if store_timeout is not None and (
            isinstance(store_timeout, bool)
            or not isinstance(store_timeout, (int, float))
            or store_timeout <= 0
        ):
            raise ValueError(f"store_timeout must be seconds > 0 or None, got {store_timeout!r}")
        if fallback_workers is not None and (
            isinstance(fallback_workers, bool)
            or not isinstance(fallback_workers, int)
            or fallback_workers < 1
        ):
            raise ValueError(
                f"fallback_workers must be an integer >= 1 or None, got {fallback_workers!r}"
            )
        if (
            isinstance(breaker_cooldown, bool)
            or not isinstance(breaker_cooldown, (int, float))
            or breaker_cooldown < 0
        ):
            raise ValueError(f"breaker_cooldown must be seconds >= 0, got {breaker_cooldown!r}")

        app_limits = tuple(_policy(entry) for entry in application_limits)
        self._app_policies = _Policies(app_limits, fallback_workers) if app_limits else None
        table: list[tuple[PathPattern, _Policies]] = []
        for pattern, entries in (route_limits or {}).items():
            items = [entries] if isinstance(entries, (str, RateLimit)) else list(entries)
            label = pattern if isinstance(pattern, str) else f"re:{pattern.pattern}"
            if not items:
                raise ValueError(
                    f"route_limits[{pattern!r}] is empty; exclude_paths exempts a route"
                )
            bound = tuple(_policy(entry)._bound(label) for entry in items)
            table.append((pattern, _Policies(app_limits + bound, fallback_workers)))
        if not app_limits and not table:
            raise ValueError(
                "RateLimitMiddleware needs application_limits or route_limits; without either it"
                " would limit nothing"
            )
        self._route_table = PathTable(table) if table else None
        self.app = app
        self._store: RateLimitStore = MemoryRateLimitStore() if store is None else store
        # The memory store never waits: charged inline, without a time box or a coroutine.
        self._local = self._store if isinstance(self._store, MemoryRateLimitStore) else None
        self._fallback = None if fallback_workers is None else MemoryRateLimitStore(clock=clock)
        self._key_func = key_func
        self._ipv4_mask = ipv4_mask
        self._ipv6_mask = ipv6_mask
        self._cost = cost
        self._exclude = PathMatcher(exclude_paths) or None
        self._headers = headers_enabled
        self._legacy = legacy_headers
        self._status = status_code
        self._error_format = error_format
        self._fail_open = fail_open
        self._timeout = store_timeout
        self._breaker = _Breaker(breaker_cooldown, clock)
        self._shadow = shadow
        self._websockets = limit_websockets
        self._websocket_denial = websocket_denial_response
        self._warned_no_client = [False]  # the one mutable flag: warn once, not per request

    @property
    def store_errors(self) -> int:
        """How many store calls failed or timed out since start-up."""
        return self._breaker.failures

    @property
    def degraded_requests(self) -> int:
        """How many requests the outage policy decided instead of the store."""
        return self._breaker.degraded

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind != "http" and (kind != "websocket" or not self._websockets):
            return await self.app(scope, receive, send)
        table = self._route_table
        policies = self._app_policies if table is None else table.lookup(scope, self._app_policies)
        if policies is None or (self._exclude is not None and self._exclude.matches(scope)):
            return await self.app(scope, receive, send)
        key = (
            self._address_key(scope)
            if self._key_func is None
            else await self._key(scope, self._key_func)
        )
        if key is None:
            return await self.app(scope, receive, send)
        cost = self._cost if isinstance(self._cost, int) else _checked_cost(self._cost(scope))
        if self._local is not None:
            allowed, states = self._local.charge_now(key, policies.limits, cost)
            decision = self._decision(key, policies, allowed, states, None)
        else:
            decision = await self._decide(key, policies, cost)
        scope[SCOPE_KEY] = decision
        if not decision.allowed and decision.enforced:
            set_outcome(scope, "limited")
            if kind == "websocket":
                return await self._refuse_handshake(scope, decision, policies, receive, send)
            return await self._refuse(decision, policies, send)
        if not decision.enforced or not (self._headers or self._legacy):
            return await self.app(scope, receive, send)
        added = self._response_headers(decision, policies)

        # A plain function returning send's awaitable: no coroutine of its own per message.
        def send_with_rate_limit(message: Message) -> Awaitable[None]:
            if message["type"] == "http.response.start":
                message["headers"] = with_rate_limit_headers(message.get("headers", ()), added)
            return send(message)

        return await self.app(scope, receive, send_with_rate_limit if kind == "http" else send)

    async def _key(self, scope: Scope, key_func: KeyFunc) -> str | None:
        found = key_func(scope)
        key = await found if inspect.isawaitable(found) else found
        if key is None:
            return self._address_key(scope)
        if len(key) > _MAX_KEY:
            key = "d:" + hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()
        return key

    def _address_key(self, scope: Scope) -> str | None:
        host = client_host(scope)
        if host is None:
            if not self._warned_no_client[0]:
                self._warned_no_client[0] = True
                logger.warning(
                    "rate limiting skipped: the request has no client address (a Unix"
                    " socket?); put ProxyHeadersMiddleware outside or pass key_func"
                )
            return None
        if self._ipv4_mask == 32 and "." in host and ":" not in host:
            return host[:_MAX_KEY]
        return group_address(host, self._ipv4_mask, self._ipv6_mask)

    async def _decide(self, key: str, policies: _Policies, cost: int) -> RateLimitDecision:
        """Ask the store; on failure, the outage policy."""
        try:
            allowed, states = await self._charge_store(key, policies.limits, cost)
        except RateLimitStoreError:
            self._breaker.degraded += 1
            if self._fallback is not None and policies.fallback is not None:
                allowed, states = self._fallback.charge_now(key, policies.fallback, cost)
                return self._decision(key, policies, allowed, states, "fallback")
            degraded = "fail-open" if self._fail_open else "fail-closed"
            return self._decision(key, policies, self._fail_open, (), degraded)
        return self._decision(key, policies, allowed, states, None)

    def _decision(
        self,
        key: str,
        policies: _Policies,
        allowed: bool,
        states: Sequence[PolicyState],
        degraded: str | None,
    ) -> RateLimitDecision:
        retry = 0
        if not allowed:
            if degraded == "fail-closed":
                retry = max(1, _seconds(self._breaker.cooldown))
            else:
                retry = max(1, max(_seconds(s.retry_after) for s in states))
            if self._shadow:
                logger.info(
                    "rate limit (shadow): would refuse key %r under %s, retry after %d s",
                    key,
                    ", ".join(limit.name for limit in policies.limits),
                    retry,
                )
        return RateLimitDecision(
            allowed, key, policies.limits, tuple(states), retry, not self._shadow, degraded
        )

    async def _charge_store(
        self, key: str, limits: Sequence[RateLimit], cost: int
    ) -> tuple[bool, Sequence[PolicyState]]:
        breaker = self._breaker
        if not breaker.should_try():
            raise RateLimitStoreError("breaker open")
        try:
            if self._timeout is None:
                result = await self._store.charge(key, limits, cost)
            else:
                with anyio.move_on_after(self._timeout) as box:
                    result = await self._store.charge(key, limits, cost)
                if box.cancelled_caught:
                    raise RateLimitStoreError(f"no answer within {self._timeout} s")
        except (RateLimitStoreError, OSError) as error:
            breaker.failed(str(error) or type(error).__name__)
            raise RateLimitStoreError(str(error)) from error
        breaker.succeeded()
        return result

    def _response_headers(
        self, decision: RateLimitDecision, policies: _Policies
    ) -> list[tuple[bytes, bytes]]:
        added: list[tuple[bytes, bytes]] = []
        states = decision.states
        limits = policies.fallback if decision.degraded == "fallback" else decision.limits
        if self._headers:
            fallback = decision.degraded == "fallback"
            header = policies.fallback_header if fallback else policies.policy_header
            added.append((_RATELIMIT_POLICY, header))
            if states:
                added.append((_RATELIMIT, policies.state_header(states)))
        if self._legacy and states and limits:
            index = min(range(len(states)), key=lambda i: states[i].remaining)
            state = states[index]
            added.append((_LEGACY[0], b"%d" % limits[index].quota))
            added.append((_LEGACY[1], b"%d" % state.remaining))
            added.append((_LEGACY[2], b"%d" % _seconds(state.reset)))
        return added

    def _refusal(
        self, decision: RateLimitDecision, policies: _Policies
    ) -> tuple[int, list[tuple[bytes, bytes]], bytes, bytes]:
        """Status, headers, body and content type of a refusal."""
        closed = decision.degraded == "fail-closed"
        status = 503 if closed else self._status
        headers = [(b"retry-after", b"%d" % decision.retry_after)]
        headers.extend(self._response_headers(decision, policies))
        title = "Service Unavailable" if closed else "Too Many Requests"
        if self._error_format == "text":
            return status, headers, title.encode("ascii"), b"text/plain; charset=utf-8"
        if closed:
            detail = "The rate limiter is unavailable"
        else:
            refused = ", ".join(
                limit.name
                for limit, state in zip(decision.limits, decision.states, strict=True)
                if state.retry_after > 0
            )
            detail = f"Rate limit {refused} exceeded"
        detail = f"{detail}; retry in {decision.retry_after} s."
        body = problem_body(status, title, detail, retry_after=decision.retry_after)
        return status, headers, body, PROBLEM_JSON

    async def _refuse(self, decision: RateLimitDecision, policies: _Policies, send: Send) -> None:
        status, headers, body, content_type = self._refusal(decision, policies)
        await send_response(send, status, headers, body, content_type=content_type)

    async def _refuse_handshake(
        self,
        scope: Scope,
        decision: RateLimitDecision,
        policies: _Policies,
        receive: Receive,
        send: Send,
    ) -> None:
        status, headers, body, content_type = self._refusal(decision, policies)
        await refuse_handshake(
            scope,
            receive,
            send,
            status,
            body,
            headers=headers,
            content_type=content_type,
            denial_response=self._websocket_denial,
        )


def _policy(entry: RateLimit | str) -> RateLimit:
    if isinstance(entry, RateLimit):
        return entry
    if isinstance(entry, str):
        return RateLimit(entry)
    raise TypeError(f"a policy must be a RateLimit or a string like '100/minute', got {entry!r}")


def _checked_cost(cost: object) -> int:
    if isinstance(cost, bool) or not isinstance(cost, int) or cost < 1:
        raise RuntimeError(f"the cost callable must return an integer >= 1, got {cost!r}")
    return cost
