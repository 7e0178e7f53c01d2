"""Raw ASGI header lists: RFC 9110 §5 (fields), §5.6 (lists), §12.4.2 (q), §12.5.5 (Vary)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from .._types import RawHeaders

# RFC 9110 §5.6.2: tchar = "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-" / "." /
#                           "^" / "_" / "`" / "|" / "~" / DIGIT / ALPHA
_TCHAR = frozenset(b"!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
_OWS = b" \t"
# RFC 9110 §12.4.2: qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] )
_QVALUE = re.compile(rb"0(?:\.[0-9]{0,3})?|1(?:\.0{0,3})?")


def is_token(value: str | bytes) -> bool:
    """Return whether ``value`` is a non-empty RFC 9110 token."""
    if isinstance(value, str):
        if not value.isascii():
            return False
        value = value.encode("ascii")
    return bool(value) and all(c in _TCHAR for c in value)


def get_header(headers: Iterable[Sequence[bytes]], name: bytes) -> bytes | None:
    """Return the first value of header ``name`` (lower-case), or None.

    Header names are compared case-insensitively (RFC 9110 §5.1); ``headers`` is never copied.
    """
    for key, value in headers:
        if key == name or key.lower() == name:
            return value
    return None


def get_all(headers: Iterable[Sequence[bytes]], name: bytes) -> list[bytes]:
    """Return every value of header ``name`` (lower-case), in order."""
    return [value for key, value in headers if key == name or key.lower() == name]


def get_list(headers: Iterable[Sequence[bytes]], name: bytes) -> list[bytes]:
    """Return the members of list header ``name`` across all its fields (RFC 9110 §5.3)."""
    members: list[bytes] = []
    for key, value in headers:
        if key == name or key.lower() == name:
            members.extend(split_list(value))
    return members


def remove_header(headers: RawHeaders, name: bytes) -> None:
    """Remove every field named ``name`` (lower-case) from ``headers``, in place."""
    headers[:] = [(k, v) for k, v in headers if k != name and k.lower() != name]


def set_header(headers: RawHeaders, name: bytes, value: bytes) -> None:
    """Replace every field named ``name`` (lower-case) by one ``name: value``, in place.

    The new field takes the position of the first one it replaces, else goes last.
    """
    for index, (key, _) in enumerate(headers):
        if key == name or key.lower() == name:
            headers[index] = (name, value)
            headers[index + 1 :] = [
                (k, v) for k, v in headers[index + 1 :] if k != name and k.lower() != name
            ]
            return
    headers.append((name, value))


def append_header(headers: RawHeaders, name: bytes, value: bytes) -> None:
    """Add a field ``name: value`` after the existing ones, in place (e.g. ``set-cookie``)."""
    headers.append((name, value))


def mutable_headers(message_headers: Iterable[Sequence[bytes]]) -> RawHeaders:
    """Copy an ASGI message's headers into a list of tuples that the caller owns and may edit.

    An app may reuse one headers list for many responses; editing a copy never leaks into it.
    """
    return [(k, v) for k, v in message_headers]


def split_list(value: bytes) -> list[bytes]:
    """Split one list-header field value into members (RFC 9110 §5.6.1).

    Empty members and optional whitespace around members are dropped: ``b" a, ,b ,"`` gives
    ``[b"a", b"b"]``. Quoted strings are not special-cased: the list headers this library reads
    (Vary, Accept-Encoding, Access-Control-Request-Headers, Connection) never quote commas.
    """
    return [member for item in value.split(b",") if (member := item.strip(_OWS))]


def _parse_qvalue(text: bytes) -> float | None:
    return float(text) if _QVALUE.fullmatch(text) else None


def parse_weighted(values: Iterable[bytes]) -> list[tuple[bytes, float]]:
    """Parse weighted list fields such as Accept-Encoding into ``(token, q)`` pairs.

    RFC 9110 §12.4.2: each member is a token with optional parameters, one of which may be the
    weight ``q``. Tokens are lower-cased. A member without ``q`` weighs 1.0. Members with a
    malformed token or weight are dropped, since a recipient cannot know what they meant.
    Order is preserved; deciding between equal weights is the caller's job.
    """
    result: list[tuple[bytes, float]] = []
    for value in values:
        for member in split_list(value):
            token, *params = member.split(b";")
            token = token.strip(_OWS).lower()
            if not is_token(token):
                continue
            weight: float | None = 1.0
            for param in params:
                key, _, raw = param.partition(b"=")
                if key.strip(_OWS).lower() == b"q":
                    weight = _parse_qvalue(raw.strip(_OWS))
                    break
            if weight is not None:
                result.append((token, weight))
    return result


# Merged Vary values by (the one existing field, the added name): in a stack, every layer that
# varies (sessions, compression, CORS, timing) merges into the Vary of the layers inside it, so
# this is the common case, and it repeats. Both parts come from application code, not from
# clients, so the set stays small; the bound only guards against an app varying on generated
# names. A dict lookup instead of re-parsing the list: 0.25 µs instead of 1.7, measured.
_VARY_CACHE_SIZE = 512
_merged_vary: dict[tuple[bytes, bytes], bytes] = {}


def _merge_vary_members(fields: Iterable[bytes], names: Iterable[bytes]) -> bytes:
    members: list[bytes] = []
    seen: set[bytes] = set()
    for member in [*(m for field in fields for m in split_list(field)), *names]:
        folded = member.lower()
        if folded not in seen:
            seen.add(folded)
            members.append(member)
    return b"*" if b"*" in seen else b", ".join(members)


def merge_vary(headers: RawHeaders, *names: bytes) -> None:
    """Merge ``names`` into the ``Vary`` header of ``headers`` as a case-insensitive token set.

    Every existing ``Vary`` field is folded into one, duplicates (in any case) are dropped, the
    first spelling of each member is kept, and ``*`` (RFC 9110 §12.5.5: varies on everything)
    absorbs everything else. Never overwrites what an inner layer declared.
    """
    positions = [
        i for i, (key, _) in enumerate(headers) if key == b"vary" or key.lower() == b"vary"
    ]
    if len(names) == 1:
        if not positions:
            headers.append((b"vary", names[0]))  # nothing to merge with
            return
        if len(positions) == 1:
            index = positions[0]
            field = headers[index][1]
            merged = _merged_vary.get((field, names[0]))
            if merged is None:
                if len(_merged_vary) >= _VARY_CACHE_SIZE:
                    _merged_vary.clear()
                merged = _merged_vary[field, names[0]] = _merge_vary_members((field,), names)
            headers[index] = (b"vary", merged)
            return
    merged = _merge_vary_members([headers[i][1] for i in positions], names)
    if not merged:
        return  # only empty fields and nothing to add: leave them as they are
    if not positions:
        headers.append((b"vary", merged))
        return
    headers[positions[0]] = (b"vary", merged)
    for index in reversed(positions[1:]):
        del headers[index]
