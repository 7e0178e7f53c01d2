"""Sessions in a signed cookie or a server-side store: RFC 6265 cookies, RFC 2104 HMAC signing,
RFC 9110 §12.5.5 ``Vary: Cookie``, and the ASGI 3 HTTP and WebSocket (``websocket.accept``
headers) message flows."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from itertools import chain
from typing import Any, Literal, Protocol

from ._core.cookies import CookieOptions, SameSite
from ._core.headers import merge_vary
from ._core.proxies import is_secure
from ._core.signing import KeyRing, Secret, b64decode, b64encode, signing_keys
from ._types import ASGIApp, Message, Receive, Scope, Send

__all__ = [
    "Session",
    "SessionCookieTooLarge",
    "SessionError",
    "SessionMiddleware",
    "SessionStore",
    "SessionStoreError",
    "get_session",
]

Clock = Callable[[], float]
IdFactory = Callable[[], str]
Action = Literal["none", "write", "clear"]

#: RFC 6265 §6.1: user agents support at least 4096 bytes per cookie, "as measured by the sum
#: of the length of the cookie's name, value, and attributes"; past it browsers drop the cookie.
COOKIE_LIMIT = 4096
#: How long a session lives on the server after its last write when ``max_age`` is None (a
#: browser-session cookie): the browser may keep such a cookie for weeks, the server does not.
DEFAULT_LIFETIME = 14 * 24 * 3600
_EMPTY = b"{}"
_OWS = b" \t"


def _make_json_encoder() -> Callable[[Any], str]:
    # Compact, ASCII-only JSON, so the bytes are stable and compare exactly. The C encoder is
    # called directly: JSONEncoder.encode rebuilds it on every call, which costs more than
    # encoding a small session.
    encoder = json.JSONEncoder(separators=(",", ":"))
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:  # pragma: no cover - CPython always has the C accelerator
        return encoder.encode
    iterencode = make(
        None,
        encoder.default,
        json.encoder.encode_basestring_ascii,
        None,
        ":",
        ",",
        False,
        False,
        True,
    )
    return lambda value: "".join(iterencode(value, 0))


_encode_json = _make_json_encoder()
# The C scanner directly: JSON.decode adds a regex pass for whitespace the encoder never writes.
_scan_json: Callable[[str, int], tuple[Any, int]] = json.JSONDecoder().scan_once  # type: ignore[attr-defined]


class SessionError(RuntimeError):
    """A session could not be loaded or saved as asked."""


class SessionStoreError(SessionError):
    """The session store failed or did not answer in time; nothing was read or overwritten."""


class SessionCookieTooLarge(SessionError):
    """The session cookie would exceed the 4096 bytes browsers accept (RFC 6265 §6.1)."""


class SessionStore(Protocol):
    """Where server-side sessions live. Every method is one round trip.

    Values are opaque bytes; ``ttl`` is in seconds. ``create`` and ``update`` are conditional so
    that a session id is never adopted from a client and a deleted session never comes back.
    A store that cannot answer raises `SessionStoreError`.
    """

    async def load(self, session_id: str) -> bytes | None:
        """Return the value stored under ``session_id``, or None if there is none."""
        ...

    async def create(self, session_id: str, data: bytes, ttl: int) -> bool:
        """Store ``data`` only if ``session_id`` is unused; return whether it was stored."""
        ...

    async def update(self, session_id: str, data: bytes, ttl: int) -> bool:
        """Replace ``data`` only if ``session_id`` still exists; return whether it did."""
        ...

    async def delete(self, session_id: str) -> None:
        """Remove ``session_id`` if present."""
        ...


def new_session_id() -> str:
    """A random session id: 256 bits from the OS CSPRNG, base64url."""
    return secrets.token_urlsafe(32)


class Session(dict[str, Any]):
    """The session of one request: a ``dict`` that remembers whether the app looked at it.

    ``request.session`` in Starlette and FastAPI returns this object (`get_session` gives it
    with its type). Any JSON-serialisable value may be stored; changes, nested ones included,
    are found by comparing the serialised content at response time, so there is nothing to
    flag by hand. Starlette's public surface is kept: ``Session({"user": 1})``, ``accessed``,
    ``modified`` and ``mark_modified()``.
    """

    # Class-level defaults, not __init__: a fresh session is a plain C-level dict creation.
    accessed = False
    _touched = False
    _forced = False
    _regenerate = False
    _id: str | None = None
    _next_id: str | None = None
    _id_factory: IdFactory | None = None
    _loaded = False
    _baseline = _EMPTY
    _created = 0
    _written = 0

    @property
    def id(self) -> str | None:
        """The server-side session id: the one the session has, or the one it will be saved
        under (a new visitor's, or after `regenerate`), chosen on first use so the app can log
        or index it before the response. None for cookie sessions, which have no id."""
        if self._id is not None and not self._regenerate:
            return self._id
        if self._next_id is None and self._id_factory is not None:
            self._next_id = self._id_factory()
        return self._next_id

    @property
    def modified(self) -> bool:
        """Whether the session will be saved: its content changed (nested changes included) or
        `mark_modified` was called. Setting it to True is `mark_modified`, as in Starlette."""
        if self._forced:
            return True
        if not self._touched:
            return False
        try:
            return _serialise(self) != self._baseline
        except TypeError:
            return True  # something new that cannot be stored: saving it will say so

    @modified.setter
    def modified(self, value: bool) -> None:
        if value:
            self.mark_modified()
        else:
            self._forced = False

    def mark_accessed(self) -> None:
        """Record that the response depends on the session (adds ``Vary: Cookie``)."""
        self.accessed = True

    def mark_modified(self) -> None:
        """Save the session at the end of this request even if its content did not change."""
        self.accessed = self._touched = self._forced = True

    def regenerate(self) -> None:
        """Give the session a new id (and a new creation time) and delete the old entry.

        Call it when the privilege level changes, typically on login, so that an id an attacker
        planted or saw before the login is worthless afterwards.
        """
        self.accessed = self._touched = self._forced = self._regenerate = True
        self._next_id = None

    # Every read marks the session accessed: the response then varies on the Cookie header.
    # Writes, and reads that hand out a list or dict the app could change in place, also mark
    # it "touched": only a touched session is serialised and compared at response time, so a
    # request that reads a user id pays nothing for change detection.
    def __getitem__(self, key: str) -> Any:
        self.accessed = True
        value = dict.__getitem__(self, key)
        if type(value) is dict or type(value) is list:
            self._touched = True
        return value

    def get(self, key: str, default: Any = None) -> Any:
        self.accessed = True
        value = dict.get(self, key, default)
        if type(value) is dict or type(value) is list:
            self._touched = True
        return value

    def __contains__(self, key: object) -> bool:
        self.accessed = True
        return dict.__contains__(self, key)

    def __iter__(self) -> Iterator[str]:
        self.accessed = True
        return dict.__iter__(self)

    def __len__(self) -> int:
        self.accessed = True
        return dict.__len__(self)

    def keys(self) -> Any:
        self.accessed = True
        return dict.keys(self)

    def values(self) -> Any:
        self.accessed = self._touched = True
        return dict.values(self)

    def items(self) -> Any:
        self.accessed = self._touched = True
        return dict.items(self)

    def copy(self) -> dict[str, Any]:
        self.accessed = self._touched = True
        return dict.copy(self)

    def __setitem__(self, key: str, value: Any) -> None:
        self.accessed = self._touched = True
        dict.__setitem__(self, key, value)

    def __delitem__(self, key: str) -> None:
        self.accessed = self._touched = True
        dict.__delitem__(self, key)

    def clear(self) -> None:
        self.accessed = self._touched = True
        dict.clear(self)

    def pop(self, key: str, *default: Any) -> Any:
        self.accessed = self._touched = True
        return dict.pop(self, key, *default)

    def popitem(self) -> tuple[str, Any]:
        self.accessed = self._touched = True
        return dict.popitem(self)

    def setdefault(self, key: str, default: Any = None) -> Any:
        self.accessed = self._touched = True
        return dict.setdefault(self, key, default)

    def update(self, *args: Any, **kwargs: Any) -> None:
        self.accessed = self._touched = True
        dict.update(self, *args, **kwargs)

    def __ior__(self, other: Any) -> Session:  # type: ignore[override,misc]
        self.accessed = self._touched = True
        dict.update(self, other)
        return self

    def __repr__(self) -> str:
        return f"Session({dict.__repr__(self)})"


def _serialise(session: Session) -> bytes:
    """The session's content as stored, or a TypeError naming the key that cannot be."""
    content = dict.copy(session)
    try:
        return _encode_json(content).encode("ascii")
    except (TypeError, ValueError) as error:
        key = next((k for k, v in content.items() if not _encodes({k: v})), None)
        raise TypeError(
            f"session[{key!r}] cannot be stored: {error}; sessions hold what JSON can encode "
            "(str, int, float, bool, None, and lists and dicts of them with str keys)"
        ) from error


def _encodes(value: Any) -> bool:
    try:
        _encode_json(value)
    except (TypeError, ValueError):
        return False
    return True


class _Connection(Protocol):
    @property
    def scope(self) -> Mapping[str, Any]: ...


def get_session(connection: _Connection | Mapping[str, Any]) -> Session:
    """The `Session` of a request, typed: ``get_session(request).regenerate()`` passes
    ``mypy --strict`` where ``request.session`` (typed as a dict by Starlette) does not.

    Args:
        connection: A Starlette, FastAPI or Litestar request or WebSocket (anything with a
            ``scope``), or an ASGI scope.

    Raises:
        RuntimeError: `SessionMiddleware` does not wrap the app that got the request.
    """
    scope = connection if isinstance(connection, Mapping) else connection.scope
    session = scope.get("session")
    if not isinstance(session, Session):
        raise RuntimeError(
            "no session in this request: wrap the app in middlewares.SessionMiddleware"
        )
    return session


def decide(
    *,
    loaded: bool,
    baseline: bytes,
    current: bytes,
    forced: bool,
    written: int,
    now: int,
    rolling: int | None,
) -> Action:
    """Decide what the response does with the session: nothing, write it, or clear it.

    Args:
        loaded: A valid session came with the request (or was saved earlier on this connection).
        baseline: The serialised content as loaded (``b"{}"`` for a new session).
        current: The serialised content now.
        forced: The app asked for a save (``mark_modified`` or ``regenerate``).
        written: Unix time of the session's last write.
        now: Unix time now.
        rolling: Renew a loaded session whose last write is at least this many seconds old.
    """
    if current == _EMPTY:
        # An emptied session is deleted; an anonymous one that stayed empty costs nothing.
        return "clear" if loaded and (baseline != _EMPTY or forced) else "none"
    if forced or current != baseline:
        return "write"
    if loaded and rolling is not None and now - written >= rolling:
        return "write"
    return "none"


def is_expired(
    created: int,
    written: int,
    now: int,
    lifetime: int,
    idle_timeout: int | None,
    absolute_timeout: int | None,
) -> bool:
    """Whether a session signed at ``written`` and created at ``created`` is over.

    Args:
        created: Unix time the session was first saved.
        written: Unix time of its last write.
        now: Unix time now.
        lifetime: Seconds a session lives after its last write (``max_age``).
        idle_timeout: Seconds without a write (renewals included) after which it ends.
        absolute_timeout: Seconds after creation after which it ends, whatever the activity.
    """
    age = now - written
    return (
        age > lifetime
        or (idle_timeout is not None and age > idle_timeout)
        or (absolute_timeout is not None and now - created > absolute_timeout)
    )


def find_cookie(headers: Iterable[Sequence[bytes]], name: bytes) -> bytes | None:
    """Return the value of cookie ``name`` from the request's ``Cookie`` fields, or None.

    The same answer as ``_core.cookies.parse_cookie(fields).get(name)`` (RFC 6265 §5.4: pairs
    split on ``;``, whitespace trimmed, one pair of quotes removed, first pair with ``=`` wins),
    found by searching the bytes instead of building a dict of every cookie on each request.
    """
    size = len(name)
    for key, value in headers:
        if key != b"cookie":
            continue
        start = 0
        while (index := value.find(name, start)) >= 0:
            start = index + 1
            # Only whitespace may precede the name in its pair...
            if value[value.rfind(b";", 0, index) + 1 : index].strip(_OWS):
                continue
            end = value.find(b";", index)
            pair = value[index + size :] if end < 0 else value[index + size : end]
            # ...and only whitespace may follow it before "=".
            before, sep, raw = pair.partition(b"=")
            if not sep or before.strip(_OWS):
                continue
            raw = raw.strip(_OWS)
            if len(raw) >= 2 and raw[0] == raw[-1] == 0x22:  # '"'
                raw = raw[1:-1]
            return raw
    return None


def _load_data(data: bytes) -> dict[str, Any] | None:
    try:
        text = data.decode("utf-8")
        value, end = _scan_json(text, 0)
    except (ValueError, RecursionError, StopIteration):  # StopIteration: no JSON value at all
        return None
    return value if end == len(text) and type(value) is dict else None


def _check_seconds(name: str, value: object, *, allow_none: bool = True) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name} must be a number of seconds >= 0 or None, got {value!r}")


def _with_session_headers(
    message: Message, set_cookie: bytes | None, *, vary: bool, accessed: bool
) -> Message:
    """``message`` with the session's ``Set-Cookie`` and, when ``vary`` is asked and the
    response depends on the session, ``Vary: Cookie``; the app's header list is not edited."""
    # A response that sets the session cookie is specific to this visitor too.
    vary = vary and (accessed or set_cookie is not None)
    if set_cookie is None and not vary:
        return message
    headers = list(message.get("headers", ()))
    if vary:
        merge_vary(headers, b"Cookie")
    if set_cookie is not None:
        headers.append((b"set-cookie", set_cookie))
    return {**message, "headers": headers}


def _with_secure_cookie(message: Message, name: bytes) -> Message:
    """``message`` with ``Secure`` added to the session's ``Set-Cookie`` (``https_only="auto"``
    on an https request); the app's header list is not edited."""
    prefix = name + b"="
    headers = message.get("headers", ())
    if not any(k == b"set-cookie" and v.startswith(prefix) for k, v in headers):
        return message
    secured = [
        (k, v + b"; Secure" if k == b"set-cookie" and v.startswith(prefix) else v)
        for k, v in headers
    ]
    return {**message, "headers": secured}


class SessionMiddleware:
    """Keep a per-visitor ``scope["session"]`` dict in a signed cookie or a server-side store.

    Without a ``store`` the session content travels in the cookie, signed with HMAC-SHA256 (it
    is readable by the visitor, never forgeable). With a ``store`` the cookie only holds a signed
    random id; ids the store never issued are ignored, never adopted. Cookies written by
    Starlette's ``SessionMiddleware`` with the same secret are read. A session is saved, and
    ``Set-Cookie`` sent, only when its content changed (nested changes included), when the app
    asks, or for a due ``rolling`` renewal; reading it adds ``Vary: Cookie``. Expiry is checked
    on the server from timestamps inside the signed data. Tampered, expired or unreadable cookies
    give an empty session.

    Args:
        app: The ASGI application to wrap.
        secret_key: The signing key, or a list of keys: the first signs, all verify, so a key
            can be rotated by putting the new one first.
        session_cookie: Cookie name. Defaults to ``"session"``.
        max_age: Seconds the session lives after its last write, sent as the cookie ``Max-Age``
            and checked on the server. Defaults to 14 days. None sends a browser-session cookie
            (the server still ends it 14 days after its last write, or per the timeouts below);
            0 or less sends ``Max-Age`` as given, so the browser drops the cookie at once.
        path: Cookie ``Path``. Defaults to ``"/"``.
        same_site: Cookie ``SameSite``: ``"lax"`` (default), ``"strict"`` or ``"none"``.
        https_only: Send the ``Secure`` attribute: True, False (the default), or ``"auto"``
            to send it on requests that came over https, as the proxy model resolved the
            scheme (behind ``ProxyHeadersMiddleware``, the client's scheme).
        domain: Cookie ``Domain``, or None (default) for a host-only cookie.
        partitioned: Send the CHIPS ``Partitioned`` attribute (needs ``https_only``).
        store: A `SessionStore` (``MemoryStore``, ``RedisStore``...) to keep the content on the
            server; None (default) keeps it in the cookie.
        idle_timeout: End a session this many seconds after its last write. Needs ``rolling``.
        absolute_timeout: End a session this many seconds after its creation, whatever the
            activity. None (default) for no such limit.
        rolling: Renew (re-sign, new ``Max-Age``, new store TTL) a session that a request
            carries when its last write is at least this many seconds old. None (default) renews
            only on change; 0 renews on every request.
        clock: Wall clock in Unix seconds; tests inject a fake one.
        id_factory: Makes new session ids for stores; tests inject a predictable one.

    Raises:
        ValueError: an invalid key, cookie attribute or duration, naming the argument.
    """

    __slots__ = (
        "_absolute",
        "_auto_secure",
        "_clock",
        "_cookie",
        "_delete",
        "_idle",
        "_lifetime",
        "_max_age",
        "_name",
        "_new_id",
        "_ring",
        "_rolling",
        "_store",
        "app",
    )

    def __init__(
        self,
        app: ASGIApp,
        *,
        secret_key: Secret | Sequence[Secret],
        session_cookie: str = "session",
        max_age: int | None = 14 * 24 * 3600,
        path: str = "/",
        same_site: SameSite = "lax",
        https_only: bool | Literal["auto"] = False,
        domain: str | None = None,
        partitioned: bool = False,
        store: SessionStore | None = None,
        idle_timeout: int | None = None,
        absolute_timeout: int | None = None,
        rolling: int | None = None,
        clock: Clock = time.time,
        id_factory: IdFactory = new_session_id,
    ) -> None:
        if secret_key is None or isinstance(secret_key, (int, float)):
            raise TypeError(
                f"secret_key must be a str, bytes, a list of them or a Secret, got {secret_key!r}"
            )
        if not isinstance(secret_key, (str, bytes, list, tuple)):
            secret_key = str(secret_key)  # starlette.datastructures.Secret and friends
        self._ring = KeyRing(signing_keys("secret_key", secret_key), salt=b"middlewares.sessions")
        if max_age is not None and (isinstance(max_age, bool) or not isinstance(max_age, int)):
            raise ValueError(f"max_age must be a number of seconds or None, got {max_age!r}")
        if same_site is None:
            raise ValueError("same_site must be 'lax', 'strict' or 'none', got None")
        if https_only not in (True, False, "auto"):
            raise ValueError(f"https_only must be True, False or 'auto', got {https_only!r}")
        cookie = CookieOptions(
            session_cookie,
            path=path,
            domain=domain,
            secure=https_only is True,
            httponly=True,
            same_site=same_site,
            partitioned=partitioned,
            # Users' tests compare Set-Cookie strings with Starlette's; Max-Age alone is what
            # every browser in use honours (RFC 6265 §5.3: it wins over Expires anyway).
            starlette_spelling=True,
        )
        for name, value in (
            ("idle_timeout", idle_timeout),
            ("absolute_timeout", absolute_timeout),
            ("rolling", rolling),
        ):
            _check_seconds(name, value)
        if idle_timeout is not None and (rolling is None or rolling >= idle_timeout):
            raise ValueError(
                "idle_timeout needs rolling renewal more often than the timeout, or active "
                f"visitors are logged out: set rolling below {idle_timeout}, "
                f"got rolling={rolling!r}"
            )
        self.app = app
        self._name = session_cookie.encode("ascii")
        self._cookie = cookie
        self._auto_secure = https_only == "auto"
        self._delete = cookie.delete_header()
        self._max_age = max_age
        self._lifetime = max_age if max_age is not None else DEFAULT_LIFETIME
        self._idle = idle_timeout
        self._absolute = absolute_timeout
        self._rolling = rolling
        self._store = store
        self._clock = clock
        self._new_id = id_factory

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind != "http" and kind != "websocket":
            await self.app(scope, receive, send)
            return
        token = find_cookie(scope["headers"], self._name)
        if token is None:
            session = Session()
        elif self._store is not None and token.count(b".") == 1:
            session = await self._load_from_store(self._store, token)
        else:
            session = self._load_cookie(token)
        if self._store is not None:
            session._id_factory = self._new_id
        scope["session"] = session
        secure = self._auto_secure and is_secure(scope)

        if kind == "http" and self._store is None:
            # Cookie sessions need no await at the response start: a plain function returning
            # send's awaitable, without a coroutine of its own per message.
            def send_with_cookie(message: Message) -> Awaitable[None]:
                if message["type"] == "http.response.start":
                    if session._loaded or session._touched or session._forced:
                        message = self._respond_with_cookie(session, message, vary=True)
                    elif session.accessed:
                        # A visitor without a session whose empty one was only read: nothing
                        # to save, but the response still depends on the (absent) cookie.
                        message = _with_session_headers(message, None, vary=True, accessed=True)
                    if secure:
                        message = _with_secure_cookie(message, self._name)
                return send(message)

            await self.app(scope, receive, send_with_cookie)
            return
        if kind == "http":

            async def send_with_session(message: Message) -> None:
                if message["type"] == "http.response.start" and (
                    session.accessed or session._loaded
                ):
                    message = await self._respond(session, message, vary=True)
                    if secure:
                        message = _with_secure_cookie(message, self._name)
                await send(message)

            await self.app(scope, receive, send_with_session)
            return

        accepted = False

        async def send_with_handshake_cookie(message: Message) -> None:
            nonlocal accepted
            kind = message["type"]
            if kind == "websocket.accept":
                message = await self._respond(session, message, vary=False)
                accepted = True
            elif kind == "websocket.http.response.start":
                message = await self._respond(session, message, vary=True)
            if secure:
                message = _with_secure_cookie(message, self._name)
            await send(message)

        await self.app(scope, receive, send_with_handshake_cookie)
        if accepted:
            await self._save_after_accept(session)

    def _load_cookie(self, token: bytes) -> Session:
        dots = token.count(b".")
        if dots == 3:
            parsed = self._parse_cookie_session(token)
        elif dots == 2:
            parsed = self._parse_starlette_session(token)
        else:
            return Session()
        if parsed is None:
            return Session()
        created, written, data = parsed
        return self._restore(None, created, written, data)

    def _parse_cookie_session(self, token: bytes) -> tuple[int, int, bytes] | None:
        verified = self._ring.unsign(token)
        if verified is None:
            return None
        created, written, data = verified[0].split(b".")
        try:
            return int(created), int(written), b64decode(data)
        except ValueError:
            return None

    def _parse_starlette_session(self, token: bytes) -> tuple[int, int, bytes] | None:
        # Starlette: TimestampSigner over standard base64 of json.dumps(session).
        verified = self._ring.unsign_itsdangerous(token)
        if verified is None:
            return None
        value, timestamp, _ = verified
        try:
            data = _load_data(b64decode(value))
        except ValueError:
            return None
        if data is None:
            return None
        # Our serialisation differs from json.dumps' spacing: compare changes against ours.
        return timestamp, timestamp, _encode_json(data).encode("ascii")

    async def _load_from_store(self, store: SessionStore, token: bytes) -> Session:
        verified = self._ring.unsign(token)
        if verified is None:
            return Session()
        session_id = verified[0].decode("ascii")
        stored = await store.load(session_id)
        if stored is None:
            return Session()  # an id the store does not know is never adopted
        try:
            created, written, data = stored.split(b".", 2)
            return self._restore(session_id, int(created), int(written), data)
        except ValueError:
            return Session()

    def _restore(self, session_id: str | None, created: int, written: int, data: bytes) -> Session:
        now = int(self._clock())
        if is_expired(created, written, now, self._lifetime, self._idle, self._absolute):
            return Session()
        content = _load_data(data)
        if content is None:
            return Session()
        session = Session(content)
        session._id = session_id
        session._loaded = True
        session._baseline = data
        session._created = created
        session._written = written
        return session

    def _action(self, session: Session, current: bytes, rolling: int | None) -> Action:
        if current == session._baseline and not session._forced and rolling is None:
            return "none"  # the common read-only request, decided without the clock
        return decide(
            loaded=session._loaded,
            baseline=session._baseline,
            current=current,
            forced=session._forced,
            written=session._written,
            now=0 if rolling is None else int(self._clock()),
            rolling=rolling,
        )

    def _pending(self, session: Session, rolling: int | None) -> tuple[bytes, Action]:
        """The session's content as it stands, and what saving it takes."""
        content = _serialise(session) if session._touched else session._baseline
        return content, self._action(session, content, rolling)

    def _respond_with_cookie(self, session: Session, message: Message, *, vary: bool) -> Message:
        """`_respond` for cookie sessions, which need no await: the HTTP hot path."""
        accessed = session.accessed
        content, action = self._pending(session, self._rolling)
        set_cookie = None if action == "none" else self._commit_cookie(session, action, content)
        return _with_session_headers(message, set_cookie, vary=vary, accessed=accessed)

    async def _respond(self, session: Session, message: Message, *, vary: bool) -> Message:
        """Save the session as it stands at the response start; return the message to send."""
        if self._store is None:
            return self._respond_with_cookie(session, message, vary=vary)
        accessed = session.accessed
        content, action = self._pending(session, self._rolling)
        set_cookie = (
            None
            if action == "none"
            else await self._commit_store(self._store, session, action, content)
        )
        return _with_session_headers(message, set_cookie, vary=vary, accessed=accessed)

    async def _commit_store(
        self, store: SessionStore, session: Session, action: Action, content: bytes
    ) -> bytes:
        """Write or clear a server-side session as ``action`` says; return the ``Set-Cookie``."""
        if action == "clear":
            if session._id is not None:
                await store.delete(session._id)
            self._reset(session, None, _EMPTY, 0, 0, loaded=False)
            return self._delete
        now = int(self._clock())
        created = now if session._regenerate or not session._loaded else session._created
        session_id = await self._store_write(store, session, content, created, now)
        if session_id is None:
            # Deleted by a concurrent request (logout): never bring it back.
            self._reset(session, None, _EMPTY, 0, 0, loaded=False)
            return self._delete
        value = self._ring.sign(session_id.encode("ascii"))
        return self._written_cookie(session, session_id, value, content, created, now)

    def _commit_cookie(self, session: Session, action: Action, content: bytes) -> bytes:
        """Write or clear a cookie session as ``action`` says; return the ``Set-Cookie``."""
        if action == "clear":
            self._reset(session, None, _EMPTY, 0, 0, loaded=False)
            return self._delete
        now = int(self._clock())
        created = now if session._regenerate or not session._loaded else session._created
        value = self._ring.sign(b"%d.%d.%s" % (created, now, b64encode(content)))
        return self._written_cookie(session, None, value, content, created, now)

    def _written_cookie(
        self,
        session: Session,
        session_id: str | None,
        value: bytes,
        content: bytes,
        created: int,
        now: int,
    ) -> bytes:
        header = self._cookie.header(value, max_age=self._max_age, now=now)
        if len(header) > COOKIE_LIMIT:
            raise SessionCookieTooLarge(
                f"the {self._name.decode()!r} session cookie would be {len(header)} bytes, over "
                f"the {COOKIE_LIMIT} bytes browsers keep (RFC 6265 §6.1), so they would drop it "
                "and log the visitor out: store less in the session or use a server-side store"
            )
        self._reset(session, session_id, content, created, now, loaded=True)
        return header

    async def _store_write(
        self, store: SessionStore, session: Session, content: bytes, created: int, now: int
    ) -> str | None:
        payload = b"%d.%d.%s" % (created, now, content)
        ttl = self._ttl(created, now)
        old_id = session._id
        if old_id is not None and not session._regenerate:
            return old_id if await store.update(old_id, payload, ttl) else None
        # The id the app may have seen through session.id first, then fresh ones.
        candidates = [session._next_id] if session._next_id is not None else []
        for new_id in chain(candidates, (self._new_id() for _ in range(3 - len(candidates)))):
            if await store.create(new_id, payload, ttl):
                break
        else:
            raise SessionStoreError("the id factory gave 3 session ids already in use")
        if old_id is not None:
            await store.delete(old_id)
        return new_id

    def _ttl(self, created: int, now: int) -> int:
        ttl = self._lifetime
        if self._idle is not None:
            ttl = min(ttl, self._idle)
        if self._absolute is not None:
            ttl = min(ttl, self._absolute - (now - created))
        return max(ttl, 1)

    @staticmethod
    def _reset(
        session: Session,
        session_id: str | None,
        baseline: bytes,
        created: int,
        written: int,
        *,
        loaded: bool,
    ) -> None:
        session._id = session_id
        session._baseline = baseline
        session._created = created
        session._written = written
        session._loaded = loaded
        session._forced = False
        session._regenerate = False
        session._next_id = None

    async def _save_after_accept(self, session: Session) -> None:
        """Persist changes made after ``websocket.accept``, when no cookie can be sent."""
        content, action = self._pending(session, None)  # no renewal without a response
        if action == "none":
            return
        store = self._store
        if store is None or (action == "write" and (session._id is None or session._regenerate)):
            raise SessionError(
                "the session changed after websocket.accept, when no cookie can be sent: "
                "change it before accepting, or keep an existing session in a server-side store"
            )
        await self._commit_store(store, session, action, content)
