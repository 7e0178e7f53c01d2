"""The trusted-proxy model: RFC 7239 ``Forwarded`` and the de facto ``X-Forwarded-*`` fields.

Which hops of a request are trusted proxies, and so what the request's client, scheme, host,
port and prefix really are. ``ProxyHeadersMiddleware`` rewrites the scope from this module's
answer; every other middleware asks the accessors (``client_host``, ``request_scheme``,
``is_secure``, ``request_origin``) and never reads a forwarding field itself. RFC 7239 §8.1:
only the values your own proxies appended can be believed, so every chain is read from the right.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any, NamedTuple, TypeVar

from .._types import Scope
from .hosts import Host, format_host, host_field, parse_host

_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}
#: The four ASGI schemes, and whether each is secure.
SCHEMES = {"http": False, "https": True, "ws": False, "wss": True}
#: A client or proxy address: a canonical IP address and a port (0 when none was given).
Address = tuple[str, int]
N = TypeVar("N")
#: The scope key where ``ProxyHeadersMiddleware`` keeps the values it replaced, by scope key.
ORIGINAL_KEY = "middlewares.proxy_headers"


def connection_peer(scope: Scope) -> Any:
    """Return the connection's own peer, ``scope["client"]`` as the server set it, even after
    ``ProxyHeadersMiddleware`` replaced it with the forwarded client."""
    original = scope.get(ORIGINAL_KEY)
    if original is not None and "client" in original:
        return original["client"]
    return scope.get("client")


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
    default port dropped, host normalised), from the resolved scheme and the ``Host`` header;
    None when the request has no usable ``Host``."""
    raw = host_field(scope)
    host = None if raw is None else parse_host(raw)
    if host is None:
        return None
    scheme = "https" if is_secure(scope) else "http"
    return f"{scheme}://{format_host(host, _DEFAULT_PORTS[scheme])}"


def scheme_for(scope_type: str, secure: bool) -> str:
    """Return the ASGI scheme of a ``scope_type`` connection: ``ws``/``wss`` for WebSockets,
    ``http``/``https`` otherwise."""
    if scope_type == "websocket":
        return "wss" if secure else "ws"
    return "https" if secure else "http"


# --- Addresses ---------------------------------------------------------------------------------

_PORT = re.compile(r"[0-9]{1,5}")
# "[" + the longest IPv6 text (45) + "]:" + a port, with room for an obfuscated port: longer
# values are never addresses, and are not remembered.
_LONGEST_NODE = 64
# RFC 7239 §6.3: obfport = "_" 1*(ALPHA / DIGIT / "." / "_" / "-")
_OBFUSCATED = re.compile(r"_[A-Za-z0-9._-]+")


def _port(text: str) -> int | None:
    if not _PORT.fullmatch(text):
        return None
    port = int(text)
    return port if port <= 65535 else None


def _ip(text: str, version: int | None = None) -> str | None:
    if not text or "%" in text or len(text) > 45:  # no zone ids: not a client address
        return None
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if version is not None and address.version != version:
        return None
    return _unmapped(address).compressed


def _unmapped(
    address: ipaddress.IPv4Address | ipaddress.IPv6Address,
) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    # RFC 4291 §2.5.5.2: ::ffff:192.0.2.1 is the IPv4 client of a dual-stack socket, one client
    # whichever way it is written, for keys, logs and trust alike.
    mapped = address.ipv4_mapped if isinstance(address, ipaddress.IPv6Address) else None
    return address if mapped is None else mapped


def parse_address(text: str) -> Address | None:
    """Return the address in one ``X-Forwarded-For`` member, or None when it is not one.

    Accepts ``192.0.2.1``, ``192.0.2.1:4711``, ``2001:db8::1``, ``[2001:db8::1]`` and
    ``[2001:db8::1]:4711``; the address comes back canonical and the port is 0 when absent.
    """
    return None if len(text) > _LONGEST_NODE else _parse_address(text)


@functools.lru_cache(maxsize=4096)
def _parse_address(text: str) -> Address | None:
    if text.startswith("["):
        inside, bracket, rest = text[1:].partition("]")
        ip = _ip(inside, 6) if bracket else None
        if ip is None:
            return None
        if not rest:
            return ip, 0
        port = _port(rest[1:]) if rest.startswith(":") else None
        return None if port is None else (ip, port)
    if text.count(":") == 1:
        host, _, port_text = text.partition(":")
        ip, port = _ip(host, 4), _port(port_text)
        return None if ip is None or port is None else (ip, port)
    ip = _ip(text)
    return None if ip is None else (ip, 0)


def parse_node(text: str) -> Address | None:
    """Return the address in an RFC 7239 §6 node, or None for ``unknown``, an obfuscated
    ``_name`` and anything that is not a node.

    ``192.0.2.60``, ``192.0.2.60:80`` and ``[2001:db8:cafe::17]:4711`` are addresses (an IPv6
    node must be bracketed); an obfuscated port (``:_abc``) gives port 0.
    """
    return None if len(text) > _LONGEST_NODE else _parse_node(text)


@functools.lru_cache(maxsize=4096)
def _parse_node(text: str) -> Address | None:
    if text.startswith("["):
        inside, bracket, rest = text[1:].partition("]")
        ip = _ip(inside, 6) if bracket else None
    else:
        inside, colon, port_text = text.partition(":")
        ip = _ip(inside, 4)
        rest = colon + port_text
    if ip is None:
        return None
    if not rest:
        return ip, 0
    if not rest.startswith(":"):
        return None
    if _OBFUSCATED.fullmatch(rest[1:]):
        return ip, 0
    port = _port(rest[1:])
    return None if port is None else (ip, port)


# --- Trust -------------------------------------------------------------------------------------


class TrustedProxies:
    """The addresses of the proxies in front of the app, and the walk over a forwarding chain.

    Entries are IP addresses (``"10.0.0.7"``, ``"::1"``) and CIDR networks (``"10.0.0.0/8"``).
    ``"*"`` trusts whatever peer connects but none of the addresses in a chain, since those
    could be anyone's: with it, exactly one hop (the peer's) is believed. Unix-socket peers
    (``scope["client"]`` is None) are trusted only with ``unix_socket=True``.

    Args:
        entries: The trusted addresses and networks.
        unix_socket: Trust a peer connected over a Unix socket.
        argument: The argument name used in error messages.

    Raises:
        TypeError: ``entries`` is a string rather than a list.
        ValueError: an entry is neither an address, a network nor ``"*"`` (``"10.0.0.0/33"``).
    """

    __slots__ = ("_addresses", "_networks", "_trusts", "trust_all", "unix_socket")

    def __init__(
        self, entries: Iterable[str], *, unix_socket: bool = False, argument: str = "trusted_hosts"
    ) -> None:
        if isinstance(entries, (str, bytes)):
            raise TypeError(
                f"{argument} must be a list of addresses or networks, got the string {entries!r}"
            )
        addresses: set[str] = set()
        networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        trust_all = False
        for entry in entries:
            if entry == "*":
                trust_all = True
                continue
            try:
                network = ipaddress.ip_network(entry.strip(), strict=False)
            except (AttributeError, TypeError, ValueError):
                raise ValueError(
                    f"{argument} entries must be IP addresses, CIDR networks ('10.0.0.0/8')"
                    f" or '*', got {entry!r}"
                ) from None
            if network.num_addresses == 1:
                addresses.add(network.network_address.compressed)
            else:
                networks.append(network)
        self.trust_all = trust_all
        self.unix_socket = unix_socket
        self._addresses = frozenset(addresses)
        self._networks = tuple(networks)
        self._trusts = functools.lru_cache(maxsize=4096)(self._in_networks)

    def _in_networks(self, host: str) -> bool:
        try:
            address = _unmapped(ipaddress.ip_address(host))
        except ValueError:
            return False
        return address.compressed in self._addresses or any(
            address in network for network in self._networks
        )

    def trusts(self, host: str) -> bool:
        """Return whether the address ``host`` is one of the listed proxies (never for
        ``"*"``, which lists none)."""
        if host in self._addresses:
            return True
        if len(host) > 45:  # longer than any IP address: never cached
            return False
        return self._trusts(host)

    def trusts_peer(self, scope: Scope) -> bool:
        """Return whether the connection's peer is a trusted proxy (the peer as the server saw
        it, so the answer is the same inside ``ProxyHeadersMiddleware``)."""
        client = connection_peer(scope)
        if not client:
            # ASGI: a Unix-socket connection has no client and a server port of None.
            server = scope.get("server")
            return self.unix_socket and (server is None or server[1] is None)
        return self.trust_all or self.trusts(client[0])

    def walk(
        self, hops: Sequence[N], address: Callable[[N], Address | None]
    ) -> tuple[int, Address | None]:
        """Walk a forwarding chain from the right, past trusted proxies, to the client.

        ``hops`` is the chain as the proxies appended it (the client's hop first), already
        known to come from a trusted peer. Returns ``(n, client)``: the client's hop is
        ``hops[-n]``, and ``client`` is its address, or, when that hop is not an address
        (``unknown``, garbage), the nearest trusted proxy's, or None when there is none. When
        every hop is a trusted proxy, the leftmost is the client.
        """
        client: Address | None = None
        count = 0
        for hop in reversed(hops):
            count += 1
            found = address(hop)
            if found is None:
                break
            client = found
            if self.trust_all or not self.trusts(found[0]):
                break
        return count, client


# --- RFC 7239 Forwarded ------------------------------------------------------------------------

_TOKEN = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_QUOTED = r'"(?:[\t \x21\x23-\x5b\x5d-\x7e\x80-\xff]|\\[\t \x21-\x7e\x80-\xff])*"'
_PAIR = re.compile(rf"[ \t]*({_TOKEN})=({_TOKEN}|{_QUOTED})[ \t]*")
_OWS = re.compile(r"[ \t]*")
_ESCAPE = re.compile(r"\\(.)")

#: One ``Forwarded`` element: its parameters by lower-case name, or None when it repeats one.
Element = dict[str, str] | None


def parse_forwarded(value: str) -> list[Element] | None:
    """Parse a ``Forwarded`` field value (several fields joined by commas) into elements.

    RFC 7239 §4: elements are separated by ``,``, pairs by ``;``; names are case-insensitive;
    values are tokens or quoted strings (unquoted here). Empty elements are skipped (RFC 9110
    §5.6.1). An element that repeats a parameter is None. A value that does not follow the
    grammar gives None: nothing in it can be trusted.
    """
    elements: list[Element] = []
    current: Element = {}
    pos, end = 0, len(value)
    while True:
        pair = _PAIR.match(value, pos)
        if pair is not None:
            name, raw = pair[1].lower(), pair[2]
            if raw.startswith('"'):
                raw = _ESCAPE.sub(r"\1", raw[1:-1])
            if current is not None:
                if name in current:
                    current = None  # §4: a parameter MUST NOT occur more than once
                else:
                    current[name] = raw
            pos = pair.end()
        else:
            pos = _OWS.match(value, pos).end()  # type: ignore[union-attr]
        if pos == end:
            break
        separator = value[pos]
        if separator == ",":
            if current != {}:
                elements.append(current)
            current = {}
        elif separator != ";":
            return None
        pos += 1
    if current != {}:
        elements.append(current)
    return elements


def _element_node(element: Element) -> Address | None:
    node = element.get("for") if element else None
    return None if node is None else parse_node(node)


# --- Resolution --------------------------------------------------------------------------------

_PREFIX = re.compile(r"(?:/(?!\.\.?(?:/|$))[A-Za-z0-9._~!$&'()*+,;=:@-]+)+/?")


def parse_prefix(value: str) -> str | None:
    """Return an ``X-Forwarded-Prefix`` value without its trailing slash, or None unless it is
    ``/`` followed by non-empty path segments (no ``//``, ``.``, ``..``, ``%``, query)."""
    return value.rstrip("/") if _PREFIX.fullmatch(value) else None


class Forwarding(NamedTuple):
    """What the trusted proxies say about a request; None fields leave the scope as it is."""

    client: Address | None = None
    secure: bool | None = None
    host: Host | None = None
    port: int | None = None
    prefix: str | None = None


_OTHER_FIELDS = {b"x-forwarded-host": 0, b"x-forwarded-port": 1, b"x-forwarded-prefix": 2}
# Chains longer than this are walked without being remembered.
_CACHED_CHAIN = 512


def _members(field: bytes) -> list[str]:
    """The members of a comma-separated list (RFC 9110 §5.6.1), empty ones dropped."""
    return [member for item in field.decode("latin-1").split(",") if (member := item.strip(" \t"))]


def _pick(field: bytes | None, count: int) -> str | None:
    """The ``count``-th member from the right, or None when there are fewer (werkzeug)."""
    if field is None or count <= 0:
        return None
    members = _members(field)
    return members[-count] if len(members) >= count else None


def _scheme(field: bytes, hops: int) -> bool | None:
    """Whether the scheme at ``hops`` from the right is secure; when the proxies wrote fewer
    values than there are hops, the leftmost is read. None for anything but the four schemes."""
    if b"," in field:
        members = _members(field)
        if not members:
            return None
        text = members[-min(hops, len(members))]
    else:
        text = field.decode("latin-1").strip(" \t")
    return SCHEMES.get(text.lower())


class ForwardedResolver:
    """Read a trusted peer's forwarding fields into a `Forwarding`, once per request.

    In ``X-Forwarded-*`` mode the client comes from walking ``X-Forwarded-For`` from the
    right (or, with ``x_for``, from that many members from the right), and the scheme is read
    at the same hop (or at its own count); host, port and prefix are read at their own counts.
    In ``forwarded`` mode everything comes from one RFC 7239 element, the client's, and
    ``X-Forwarded-*`` is never read. Fields of the same name are joined in order (RFC 9110 §5.3).

    Args:
        trust: The trusted proxies.
        forwarded: Read RFC 7239 ``Forwarded`` instead of ``X-Forwarded-*``.
        x_for: None walks the chain by address; a count trusts that many hops (werkzeug).
        x_proto: None reads the scheme at the client's hop; 0 ignores it; a count as werkzeug.
        x_host: 0 ignores the forwarded host; a count reads that member from the right (in
            ``forwarded`` mode, any count reads the client element's ``host``).
        x_port: 0 ignores ``X-Forwarded-Port``; a count reads that member from the right.
        x_prefix: 0 ignores ``X-Forwarded-Prefix``; a count reads that member from the right.
    """

    __slots__ = (
        "_chain",
        "_others",
        "forwarded",
        "trust",
        "x_for",
        "x_host",
        "x_port",
        "x_prefix",
        "x_proto",
    )

    def __init__(
        self,
        trust: TrustedProxies,
        *,
        forwarded: bool = False,
        x_for: int | None = None,
        x_proto: int | None = None,
        x_host: int = 0,
        x_port: int = 0,
        x_prefix: int = 0,
    ) -> None:
        self.trust = trust
        self.forwarded = forwarded
        self.x_for = x_for
        self.x_proto = x_proto
        self.x_host = x_host
        self.x_port = x_port
        self.x_prefix = x_prefix
        self._others = bool(x_host or x_port or x_prefix)
        # The same client sends many requests: remember each chain's answer, bounded.
        self._chain = functools.lru_cache(maxsize=4096)(self._walk_chain)

    def resolve(self, headers: Iterable[tuple[bytes, bytes]]) -> Forwarding | None:
        """Return what the forwarding fields say, or None when they say nothing usable."""
        if self.forwarded:
            fields = [value for key, value in headers if key == b"forwarded"]
            return self._from_forwarded(fields) if fields else None
        xff: bytes | None = None
        xfp: bytes | None = None
        others: list[bytes | None] | None = None
        for key, value in headers:
            if key == b"x-forwarded-for":
                xff = value if xff is None else xff + b"," + value
            elif key == b"x-forwarded-proto":
                xfp = value if xfp is None else xfp + b"," + value
            elif self._others and key in _OTHER_FIELDS:
                others = others or [None, None, None]
                index = _OTHER_FIELDS[key]
                known = others[index]
                others[index] = value if known is None else known + b"," + value
        if xff is None and xfp is None and others is None:
            return None
        hops, client = (1, None) if xff is None else self._chain_of(bytes(xff))
        secure = None
        if xfp is not None and self.x_proto is None:
            secure = _scheme(xfp, hops)
        elif xfp is not None and self.x_proto:
            text = _pick(xfp, self.x_proto)
            secure = None if text is None else SCHEMES.get(text.lower())
        if others is None:
            if client is None and secure is None:
                return None
            return Forwarding(client, secure)
        return self._with_others(client, secure, others)

    def _chain_of(self, xff: bytes) -> tuple[int, Address | None]:
        return self._chain(xff) if len(xff) <= _CACHED_CHAIN else self._walk_chain(xff)

    def _walk_chain(self, xff: bytes) -> tuple[int, Address | None]:
        hops = _members(xff)
        if not hops:
            return 1, None
        if self.x_for is None:
            return self.trust.walk(hops, parse_address)
        if len(hops) < self.x_for:
            return 1, None
        return self.x_for, parse_address(hops[-self.x_for])

    def _with_others(
        self, client: Address | None, secure: bool | None, others: list[bytes | None]
    ) -> Forwarding | None:
        xfh, xfport, xfprefix = others
        text = _pick(xfh, self.x_host)
        host = None if text is None else parse_host(text.encode("latin-1"))
        text = _pick(xfport, self.x_port)
        port = None if text is None else _port(text)
        text = _pick(xfprefix, self.x_prefix)
        prefix = None if text is None else parse_prefix(text)
        if client is None and secure is None and host is None and port is None and not prefix:
            return None
        return Forwarding(client, secure, host, port, prefix or None)

    def _from_forwarded(self, fields: list[bytes]) -> Forwarding | None:
        elements = parse_forwarded(", ".join(f.decode("latin-1") for f in fields))
        if not elements:
            return None
        if self.x_for is None:
            hops, client = self.trust.walk(elements, _element_node)
        elif len(elements) >= self.x_for:
            hops = self.x_for
            client = _element_node(elements[-hops])
        else:
            return None
        element = elements[-hops]
        if element is None:
            return None if client is None else Forwarding(client)
        proto = element.get("proto") if self.x_proto != 0 else None
        secure = None if proto is None else SCHEMES.get(proto.lower())
        host_text = element.get("host") if self.x_host else None
        host = None if host_text is None else parse_host(host_text.encode("latin-1"))
        if client is None and secure is None and host is None:
            return None
        return Forwarding(client, secure, host)
