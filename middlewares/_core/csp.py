"""Content-Security-Policy directives: validation and serialisation (CSP Level 3 §2.2, §2.3)."""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterable, Mapping
from typing import Final

#: Put this in a directive's sources to have a fresh per-response nonce there:
#: ``{"script-src": ["'self'", NONCE]}`` is sent as ``script-src 'self' 'nonce-<random>'``.
NONCE: Final = "<csp-nonce>"

#: A directive's value: sources as a list or one space-separated string; ``True`` (or an empty
#: list) for a directive without a value such as ``upgrade-insecure-requests``; ``None`` or
#: ``False`` leaves the directive out (to drop one from a default).
Sources = str | Iterable[str] | bool | None
#: Directive name to value, e.g. ``{"default-src": "'self'", "object-src": ["'none'"]}``.
Directives = Mapping[str, Sources]

# CSP3 §2.2.1: directive-name = 1*( ALPHA / DIGIT / "-" )
_NAME = re.compile(r"[a-z0-9-]+")
# A source expression is printable ASCII without whitespace, and never holds the ";" and ","
# that separate directives and policies (CSP3 §2.2.1, §2.3.1).
_SOURCE = re.compile(r"[!-+\--:<-~]+")
# Keywords that mean something only when single-quoted (CSP3 §2.3.1); unquoted, ``self``
# is a host named "self" and the policy silently allows nothing (helmet #454).
_KEYWORDS = frozenset(
    {
        "self",
        "none",
        "unsafe-inline",
        "unsafe-eval",
        "strict-dynamic",
        "unsafe-hashes",
        "report-sample",
        "unsafe-allow-redirects",
        "wasm-unsafe-eval",
        "inline-speculation-rules",
        "trusted-types-eval",
    }
)
_QUOTED_PREFIXES = ("nonce-", "sha256-", "sha384-", "sha512-")
# Marks where a nonce goes while a policy is serialised; never valid in a source.
_SLOT = "\x00"

#: Directives of CSP Level 3, Trusted Types, Upgrade Insecure Requests and Mixed Content; the
#: list ``strict_directives=True`` accepts.
KNOWN_DIRECTIVES: Final = frozenset(
    {
        "base-uri",
        "child-src",
        "connect-src",
        "default-src",
        "fenced-frame-src",
        "font-src",
        "form-action",
        "frame-ancestors",
        "frame-src",
        "img-src",
        "manifest-src",
        "media-src",
        "object-src",
        "report-to",
        "report-uri",
        "require-trusted-types-for",
        "sandbox",
        "script-src",
        "script-src-attr",
        "script-src-elem",
        "style-src",
        "style-src-attr",
        "style-src-elem",
        "trusted-types",
        "upgrade-insecure-requests",
        "webrtc",
        "worker-src",
    }
)
# Removed from the specs; browsers ignore them or log an error for each response.
_DEPRECATED = {
    "block-all-mixed-content": "browsers upgrade or block mixed content themselves now",
    "plugin-types": "plugins are gone; use object-src 'none'",
    "prefetch-src": "it was removed from CSP Level 3",
    "referrer": "use the Referrer-Policy header",
    "reflected-xss": "the XSS auditor is gone",
    "navigate-to": "it was removed from CSP Level 3",
    "disown-opener": "use Cross-Origin-Opener-Policy",
}


def _sources(argument: str, name: str, value: Sources) -> list[str] | None:
    """Validate one directive's value; return its sources, or None to leave it out."""
    if value is None or value is False:
        return None
    if value is True:
        return []
    raw: object = value
    if isinstance(raw, bytes):
        raise TypeError(f"{argument}[{name!r}] must be str sources, got bytes {raw!r}")
    items = value.split() if isinstance(value, str) else list(value)
    sources: list[str] = []
    for source in items:
        if not isinstance(source, str):
            raise TypeError(f"{argument}[{name!r}] sources must be strings, got {source!r}")
        if source == NONCE:
            sources.append(f"'nonce-{_SLOT}'")
            continue
        if not _SOURCE.fullmatch(source):
            raise ValueError(
                f"{argument}[{name!r}] has an invalid source {source!r}: a source is printable"
                " ASCII without spaces, ';' or ',' (those separate directives and policies)"
            )
        if source.lower() in _KEYWORDS or source.lower().startswith(_QUOTED_PREFIXES):
            raise ValueError(
                f"{argument}[{name!r}] has the unquoted keyword {source!r}; write \"'{source}'\""
                " (unquoted, it names a host and matches nothing)"
            )
        sources.append(source)
    return sources


def compile_policy(
    directives: Directives, *, argument: str, strict: bool = False, stacklevel: int = 1
) -> tuple[bytes, ...]:
    """Validate ``directives`` and serialise them as a policy (CSP3 §2.2.1, Helmet's layout:
    ``default-src 'self';img-src 'self' data:``).

    Returns the policy's bytes split where its nonces go: one part when it has no ``NONCE``,
    and ``nonce.join(parts)`` is the header value for a response's nonce.

    Args:
        directives: Directive name (any case) to value; see ``Directives``.
        argument: The argument name quoted in error messages.
        strict: Refuse directive names outside ``KNOWN_DIRECTIVES``; otherwise unknown names
            pass through, as the CSP3 grammar allows, so new directives need no upgrade.
        stacklevel: The frame a warning names: 1 is the caller, 2 its caller, and so on, so
            that a public constructor can name the user's line.

    Raises:
        TypeError: ``directives`` is not a mapping, or a value is not str, list or bool.
        ValueError: a name is not a directive name, is given twice, is unknown while
            ``strict``; a source is an unquoted keyword or holds a space, ``;`` or ``,``; the
            policy is empty.

    Warns:
        UserWarning: a directive that browsers no longer support (not a DeprecationWarning,
            which Python hides outside ``__main__``).
    """
    if not isinstance(directives, Mapping):
        raise TypeError(f"{argument} must be a mapping of directive to sources, got {directives!r}")
    serialised: list[str] = []
    seen: set[str] = set()
    for raw_name, value in directives.items():
        name = raw_name.lower() if isinstance(raw_name, str) else raw_name
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise ValueError(f"{argument} has an invalid directive name {raw_name!r}")
        if name in seen:
            raise ValueError(f"{argument} gives the directive {name!r} twice")
        seen.add(name)
        if strict and name not in KNOWN_DIRECTIVES:
            raise ValueError(
                f"{argument} has the unknown directive {name!r} (strict_directives=True)"
            )
        sources = _sources(argument, name, value)
        if sources is None:
            continue
        if name in _DEPRECATED:
            warnings.warn(
                f"{argument}: the directive {name!r} is deprecated: {_DEPRECATED[name]}",
                UserWarning,
                stacklevel=stacklevel + 1,
            )
        serialised.append(" ".join([name, *sources]))
    if not serialised:
        raise ValueError(f"{argument} has no directives; pass None to send no policy")
    return tuple(part.encode("ascii") for part in ";".join(serialised).split(_SLOT))


def extend_directives(directives: Directives, additions: Directives) -> dict[str, Sources]:
    """Return a copy of ``directives`` with ``additions``' sources appended (each once).

    ``extend_directives(SITE_CSP, {"img-src": "https://cdn.example"})`` keeps the site's
    ``img-src`` and adds the CDN. A directive only in ``additions`` is added; a value of
    ``None`` in ``additions`` drops the directive.
    """
    result: dict[str, Sources] = {name.lower(): value for name, value in directives.items()}
    for raw_name, extra in additions.items():
        name = raw_name.lower()
        if extra is None or extra is False:
            result.pop(name, None)
            continue
        current = result.get(name)
        if current is None or isinstance(current, bool) or isinstance(extra, bool):
            result[name] = extra
            continue
        base = current.split() if isinstance(current, str) else list(current)
        more = extra.split() if isinstance(extra, str) else list(extra)
        result[name] = list(dict.fromkeys([*base, *more]))
    return result
