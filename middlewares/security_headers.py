"""Security response headers: Helmet's set, Content-Security-Policy Level 3 with per-response
nonces (§7.1), HSTS (RFC 6797), Reporting-Endpoints (Reporting API §3) and Permissions-Policy."""

from __future__ import annotations

import base64
import dataclasses
import os
import re
import sys
import warnings
from collections.abc import Awaitable, Collection, Iterable, Mapping, Sequence
from contextvars import ContextVar
from types import MappingProxyType
from typing import Any, Literal

from ._core.csp import NONCE, Directives, Sources, compile_policy, extend_directives
from ._core.paths import PathPattern, PathTable
from ._core.proxies import is_secure
from ._core.respond import send_server_error
from ._types import ASGIApp, Message, RawHeaders, Receive, Scope, Send

__all__ = [
    "DEFAULT_CSP",
    "HTML_PRESET",
    "JSON_API_PRESET",
    "NONCE",
    "SecurityHeadersMiddleware",
    "extend_directives",
    "fastapi_docs_overrides",
    "get_csp_nonce",
]

#: Helmet 8.3's default Content-Security-Policy, directive by directive. Build on it with
#: ``{**DEFAULT_CSP, "script-src": ["'self'", NONCE]}``; a ``None`` value drops a directive.
DEFAULT_CSP: Mapping[str, Sources] = MappingProxyType(
    {
        "default-src": ("'self'",),
        "base-uri": ("'self'",),
        "font-src": ("'self'", "https:", "data:"),
        "form-action": ("'self'",),
        "frame-ancestors": ("'self'",),
        "img-src": ("'self'", "data:"),
        "object-src": ("'none'",),
        "script-src": ("'self'",),
        "script-src-attr": ("'none'",),
        "style-src": ("'self'", "https:", "'unsafe-inline'"),
        "upgrade-insecure-requests": True,
    }
)

#: Keyword arguments for server-rendered HTML: Helmet's policy with a nonce in ``script-src``,
#: so inline scripts run only when the template writes the response's nonce.
HTML_PRESET: Mapping[str, Any] = MappingProxyType(
    {"content_security_policy": MappingProxyType({**DEFAULT_CSP, "script-src": ("'self'", NONCE)})}
)

#: Keyword arguments for a JSON API (Mozilla Observatory's advice): nothing may load and
#: nothing may frame a response.
JSON_API_PRESET: Mapping[str, Any] = MappingProxyType(
    {
        "content_security_policy": {"default-src": "'none'", "frame-ancestors": "'none'"},
        "frame_options": "DENY",
    }
)

_csp_nonce: ContextVar[str | None] = ContextVar("middlewares.csp_nonce", default=None)

# CSP3 §7.1: a nonce is unique per response, from a CSPRNG, and carries >= 128 bits. 18 random
# bytes are 144 bits and exactly 24 base64url characters, so one os.urandom call and one encode
# give the next 256 nonces, independent and unpredictable, instead of a system call each.
# list.pop is atomic, so threads never share one; a forked child starts with an empty pool.
_NONCE_BYTES = 18
_NONCE_BATCH = 256
_nonce_pool: list[tuple[bytes, str]] = []
if sys.platform != "win32":  # pragma: no branch - Windows has no fork
    os.register_at_fork(after_in_child=_nonce_pool.clear)


def new_nonce() -> tuple[bytes, str]:
    """Return a fresh nonce as header bytes and as text."""
    try:
        return _nonce_pool.pop()
    except IndexError:
        data = base64.urlsafe_b64encode(os.urandom(_NONCE_BYTES * _NONCE_BATCH))
        text = data.decode("ascii")
        size = _NONCE_BYTES * 4 // 3
        _nonce_pool.extend(
            (data[i : i + size], text[i : i + size]) for i in range(size, len(data), size)
        )
        return data[:size], text[:size]


def get_csp_nonce() -> str | None:
    """Return the current response's CSP nonce, or None outside a request or when its policy
    has no ``NONCE``. A Jinja2 global: ``templates.env.globals["csp_nonce"] = get_csp_nonce``,
    then ``<script nonce="{{ csp_nonce() }}">``."""
    return _csp_nonce.get()


_CSP = b"content-security-policy"
_CSP_REPORT_ONLY = b"content-security-policy-report-only"
_CACHE_CONTROL = b"cache-control"
_ONE_YEAR = 31536000  # hstspreload.org's minimum max-age

# Allowed values (lower-case) of the token-valued headers.
_CHOICES: dict[str, frozenset[str]] = {
    "cross_origin_opener_policy": frozenset(
        {"same-origin", "same-origin-allow-popups", "noopener-allow-popups", "unsafe-none"}
    ),
    "cross_origin_resource_policy": frozenset({"same-origin", "same-site", "cross-origin"}),
    "cross_origin_embedder_policy": frozenset({"require-corp", "credentialless", "unsafe-none"}),
    "frame_options": frozenset({"deny", "sameorigin"}),
    "referrer_policy": frozenset(
        {
            "no-referrer",
            "no-referrer-when-downgrade",
            "origin",
            "origin-when-cross-origin",
            "same-origin",
            "strict-origin",
            "strict-origin-when-cross-origin",
            "unsafe-url",
        }
    ),
    "x_dns_prefetch_control": frozenset({"on", "off"}),
    "x_permitted_cross_domain_policies": frozenset(
        {"none", "master-only", "by-content-type", "all", "by-ftp-filename"}
    ),
}
_HEADER_NAMES = {
    "cross_origin_opener_policy": b"cross-origin-opener-policy",
    "cross_origin_resource_policy": b"cross-origin-resource-policy",
    "cross_origin_embedder_policy": b"cross-origin-embedder-policy",
    "frame_options": b"x-frame-options",
    "referrer_policy": b"referrer-policy",
    "x_dns_prefetch_control": b"x-dns-prefetch-control",
    "x_permitted_cross_domain_policies": b"x-permitted-cross-domain-policies",
}
# Headers only a document (an HTML page) acts on; ``html_only=True`` leaves them off the rest.
_DOCUMENT_HEADERS = frozenset(
    {
        _CSP,
        _CSP_REPORT_ONLY,
        b"reporting-endpoints",
        b"x-frame-options",
        b"permissions-policy",
        b"cross-origin-opener-policy",
        b"origin-agent-cluster",
        b"x-xss-protection",
        b"x-dns-prefetch-control",
        b"x-download-options",
    }
)
# Structured Fields key (RFC 8941 §3.2): Reporting-Endpoints group names, Permissions-Policy
# feature names.
_SF_KEY = re.compile(r"[a-z*][a-z0-9_.*-]*")
_URL = re.compile(r"[!#-+\--:<-\[\]-~]+")  # printable ASCII without space , ; " \
_DEPRECATED_FEATURES = {"interest-cohort": "FLoC is gone; Chrome logs an error for it"}


@dataclasses.dataclass(frozen=True)
class _Options:
    """Every keyword argument of the middleware but ``overrides``: what a path may replace."""

    content_security_policy: Directives | None
    content_security_policy_report_only: Directives | None
    report_uri: str | None
    report_to: Mapping[str, str] | None
    strict_directives: bool
    strict_transport_security: bool
    strict_transport_security_max_age: int
    strict_transport_security_include_subdomains: bool
    strict_transport_security_preload: bool
    strict_transport_security_exclude_localhost: bool
    cross_origin_opener_policy: str | None
    cross_origin_resource_policy: str | None
    cross_origin_embedder_policy: str | None
    origin_agent_cluster: bool
    referrer_policy: str | Sequence[str] | None
    x_content_type_options: bool
    x_dns_prefetch_control: str | None
    x_download_options: bool
    frame_options: str | None
    x_permitted_cross_domain_policies: str | None
    x_xss_protection: bool
    permissions_policy: Mapping[str, str | Sequence[str]] | None
    remove_headers: Collection[str]
    html_only: bool
    nonce_cache_control: bool
    mode: Literal["set_if_absent", "override"]


def _choice(option: str, value: str | Sequence[str]) -> bytes:
    """Validate a token-valued header option against its allowed values; only
    ``referrer_policy`` takes a list (a fallback order, W3C Referrer Policy §11.1)."""
    if isinstance(value, str):
        values = [value]
    elif option == "referrer_policy" and isinstance(value, Sequence):
        values = list(value)
    else:
        values = []
    allowed = _CHOICES[option]
    if not values or any(not isinstance(v, str) or v.lower() not in allowed for v in values):
        raise ValueError(
            f"{option} must be one of {', '.join(sorted(allowed))} (or None), got {value!r}"
        )
    if option == "frame_options":
        return values[0].upper().encode("ascii")  # RFC 7034 §2.1 spells them upper-case
    return ", ".join(v.lower() for v in values).encode("ascii")


def _url(option: str, url: object) -> str:
    if not isinstance(url, str) or not _URL.fullmatch(url):
        raise ValueError(f"{option} must be a URL without spaces, quotes, ';' or ',', got {url!r}")
    return url


def _hsts_value(options: _Options) -> bytes | None:
    """RFC 6797 §6.1 value; preload is checked against hstspreload.org's submission rules."""
    if not options.strict_transport_security:
        return None
    max_age = options.strict_transport_security_max_age
    if not isinstance(max_age, int) or isinstance(max_age, bool) or max_age < 0:
        raise ValueError(
            "strict_transport_security_max_age must be a whole number of seconds >= 0,"
            f" got {max_age!r}"
        )
    value = f"max-age={max_age}"
    if options.strict_transport_security_include_subdomains:
        value += "; includeSubDomains"
    if options.strict_transport_security_preload:
        if max_age < _ONE_YEAR or not options.strict_transport_security_include_subdomains:
            raise ValueError(
                "strict_transport_security_preload=True needs"
                f" strict_transport_security_max_age >= {_ONE_YEAR} (one year) and"
                " strict_transport_security_include_subdomains=True, as the preload list"
                f" requires; got max_age={max_age!r}, include_subdomains="
                f"{options.strict_transport_security_include_subdomains!r}"
            )
        value += "; preload"
    return value.encode("ascii")


def _permissions_value(policy: Mapping[str, str | Sequence[str]]) -> bytes:
    """Serialise a Permissions-Policy (a Structured Fields Dictionary of inner lists)."""
    if not isinstance(policy, Mapping):
        raise TypeError(f"permissions_policy must be a mapping, got {policy!r}")
    members: list[str] = []
    for feature, allow in policy.items():
        if not isinstance(feature, str) or not _SF_KEY.fullmatch(feature):
            raise ValueError(f"permissions_policy has an invalid feature name {feature!r}")
        if feature in _DEPRECATED_FEATURES:
            warnings.warn(
                f"permissions_policy: {feature!r} is deprecated: {_DEPRECATED_FEATURES[feature]}",
                UserWarning,
                stacklevel=4,  # the code that built the middleware
            )
        if allow == "*":
            members.append(f"{feature}=*")
            continue
        items = [allow] if isinstance(allow, str) else list(allow)
        listed: list[str] = []
        for item in items:
            if item in ("self", "src"):
                listed.append(item)
            elif isinstance(item, str) and _URL.fullmatch(item) and "://" in item:
                listed.append(f'"{item}"')
            else:
                raise ValueError(
                    f"permissions_policy[{feature!r}] members must be 'self', 'src' or an"
                    f" origin such as 'https://a.example', got {item!r}"
                )
        members.append(f"{feature}=({' '.join(listed)})")
    return ", ".join(members).encode("ascii")


def _report_to(options: _Options) -> tuple[str, str, bytes] | None:
    """The CSP ``report-to`` group, its URL and the ``Reporting-Endpoints`` value (Reporting
    API §3), or None."""
    groups = options.report_to
    if not groups:
        return None
    if not isinstance(groups, Mapping):
        raise TypeError(f"report_to must be a mapping of group name to URL, got {groups!r}")
    for group, url in groups.items():
        if not isinstance(group, str) or not _SF_KEY.fullmatch(group):
            raise ValueError(f"report_to group names must be lower-case tokens, got {group!r}")
        _url("report_to URLs", url)
    value = ", ".join(f'{group}="{url}"' for group, url in groups.items())
    first = next(iter(groups))
    return first, groups[first], value.encode("ascii")


def _policy_parts(
    options: _Options, argument: str, directives: Directives | None
) -> tuple[bytes, ...] | None:
    if directives is None:
        return None
    if isinstance(directives, Mapping):
        # A policy's own report-to and report-uri are kept; the arguments fill in the rest.
        extra: dict[str, Sources] = {}
        names = {str(name).lower() for name in directives}
        reporting = _report_to(options)
        if reporting is not None and "report-to" not in names:
            extra["report-to"] = reporting[0]
        if "report-uri" not in names:
            if options.report_uri is not None:
                extra["report-uri"] = _url("report_uri", options.report_uri)
            elif reporting is not None:
                # Firefox and Safari send no CSP reports through the Reporting API.
                extra["report-uri"] = reporting[1]
        directives = {**directives, **extra} if extra else directives
    # Warnings name the code that built the middleware: four frames up from here.
    return compile_policy(
        directives, argument=argument, strict=options.strict_directives, stacklevel=4
    )


@dataclasses.dataclass(frozen=True)
class _Policy:
    """The header blocks one configuration adds, prepared once.

    ``blocks[secure][document]`` holds the fixed headers; ``nonced`` the policies whose value
    depends on the response's nonce, as ``(name, parts)``.
    """

    blocks: tuple[tuple[RawHeaders, RawHeaders], tuple[RawHeaders, RawHeaders]]
    nonced: tuple[tuple[bytes, tuple[bytes, ...]], ...]
    owned: frozenset[bytes]
    drop: frozenset[bytes]
    html_only: bool
    nonce_cache_control: bool
    exclude_localhost: bool

    @classmethod
    def build(cls, options: _Options) -> _Policy:
        if options.mode not in ("set_if_absent", "override"):
            raise ValueError(f"mode must be 'set_if_absent' or 'override', got {options.mode!r}")
        if isinstance(options.remove_headers, (str, bytes)):
            raise TypeError(
                f"remove_headers must be a list of names, got the string {options.remove_headers!r}"
            )
        fixed: list[tuple[bytes, bytes]] = []
        nonced: list[tuple[bytes, tuple[bytes, ...]]] = []
        for name, argument, directives in (
            (_CSP, "content_security_policy", options.content_security_policy),
            (
                _CSP_REPORT_ONLY,
                "content_security_policy_report_only",
                options.content_security_policy_report_only,
            ),
        ):
            parts = _policy_parts(options, argument, directives)
            if parts is None:
                continue
            if len(parts) == 1:
                fixed.append((name, parts[0]))
            else:
                nonced.append((name, parts))
        reporting = _report_to(options)
        if reporting is not None:
            fixed.append((b"reporting-endpoints", reporting[2]))
        for option, header in _HEADER_NAMES.items():
            value = getattr(options, option)
            if value is not None:
                fixed.append((header, _choice(option, value)))
        for flag, header, value in (
            (options.origin_agent_cluster, b"origin-agent-cluster", b"?1"),
            (options.x_content_type_options, b"x-content-type-options", b"nosniff"),
            (options.x_download_options, b"x-download-options", b"noopen"),
            # The XSS auditor is gone and its filter could be abused; "0" turns old ones off.
            (options.x_xss_protection, b"x-xss-protection", b"0"),
        ):
            if flag:
                fixed.append((header, value))
        if options.permissions_policy is not None:
            fixed.append((b"permissions-policy", _permissions_value(options.permissions_policy)))
        hsts = _hsts_value(options)
        sts = [(b"strict-transport-security", hsts)] if hsts is not None else []
        other = [h for h in fixed if h[0] not in _DOCUMENT_HEADERS] if options.html_only else fixed
        remove = frozenset(name.lower().encode("latin-1") for name in options.remove_headers)
        owned = {name for name, _ in fixed} | {name for name, _ in nonced} | remove
        if nonced:
            owned.add(_CACHE_CONTROL)
        if hsts is not None:
            owned.add(b"strict-transport-security")
        return cls(
            blocks=((other, fixed), (other + sts, fixed + sts)),
            nonced=tuple(nonced),
            owned=frozenset(owned),
            html_only=options.html_only,
            nonce_cache_control=options.nonce_cache_control,
            drop=frozenset(owned - {_CACHE_CONTROL}) if options.mode == "override" else remove,
            exclude_localhost=options.strict_transport_security_exclude_localhost,
        )


def _is_html(headers: Iterable[tuple[bytes, bytes]]) -> bool:
    for key, value in headers:
        if key.lower() == b"content-type":
            media = value.split(b";", 1)[0].strip().lower()
            return media in (b"text/html", b"application/xhtml+xml")
    return False


def is_localhost(scope: Scope) -> bool:
    """Whether the request's ``Host`` is ``localhost`` or a ``*.localhost`` name (RFC 6761 §6.3),
    where a pinned HSTS entry would break every other local project."""
    for key, value in scope["headers"]:
        if key == b"host":
            name = value.lower()
            if name.startswith(b"["):
                return False
            name = name.rsplit(b":", 1)[0].rstrip(b".")
            return bool(name == b"localhost" or name.endswith(b".localhost"))
    return False


def private_cache_control(value: bytes | None) -> bytes | None:
    """The ``Cache-Control`` a nonce'd response needs (RFC 9111 §5.2.2.7), or None to keep it.

    Already ``private`` or ``no-store``: kept. Otherwise ``private`` is added and ``public`` and
    ``s-maxage`` (shared-cache directives) are dropped, other directives kept.
    """
    if value is None:
        return b"private"
    members = [m.strip() for m in value.split(b",") if m.strip()]
    names = [m.split(b"=", 1)[0].strip().lower() for m in members]
    if b"private" in names or b"no-store" in names:
        return None
    kept = [m for m, n in zip(members, names, strict=True) if n not in (b"public", b"s-maxage")]
    return b", ".join([b"private", *kept])


def with_security_headers(
    headers: Iterable[tuple[bytes, bytes]], policy: _Policy, secure: bool, nonce: bytes | None
) -> RawHeaders:
    """Return a new header list: ``headers`` plus the policy's headers, set only where the app
    set none (or replacing the app's with ``mode="override"``). The app's list is not edited."""
    raw = list(headers)
    document = not policy.html_only or _is_html(raw)
    block = policy.blocks[secure][document]
    present = {key.lower() for key, _ in raw}
    if present.isdisjoint(policy.owned):
        raw.extend(block)
        if nonce is not None and document:
            for name, parts in policy.nonced:
                raw.append((name, nonce.join(parts)))
            if policy.nonce_cache_control:
                raw.append((_CACHE_CONTROL, b"private"))
        return raw
    drop = policy.drop
    if not drop.isdisjoint(present):
        raw = [(k, v) for k, v in raw if k.lower() not in drop]
        present -= drop
    raw.extend(h for h in block if h[0] not in present)
    if nonce is None or not document:
        return raw
    added = False
    for name, parts in policy.nonced:
        if name not in present:
            raw.append((name, nonce.join(parts)))
            added = True
    if added and policy.nonce_cache_control:
        index = next((i for i, (k, _) in enumerate(raw) if k.lower() == _CACHE_CONTROL), None)
        value = private_cache_control(None if index is None else raw[index][1])
        if value is not None:
            if index is None:
                raw.append((_CACHE_CONTROL, value))
            else:
                raw[index] = (_CACHE_CONTROL, value)
    return raw


Override = Mapping[str, Any] | Literal[False]


class SecurityHeadersMiddleware:
    """Add the response headers a security review asks for, with a nonce'd CSP and HSTS.

    Helmet 8.3's defaults (COEP off), each header changeable or removable by its argument.
    Headers are added at ``http.response.start`` only where the app set none, so an app's own
    ``Content-Security-Policy`` wins and is never doubled. When a policy holds ``NONCE``, each
    request gets a fresh 144-bit base64url nonce before the app runs, readable as
    ``scope["state"]["csp_nonce"]`` (``request.state.csp_nonce``) and ``get_csp_nonce()``, and
    the response gets ``Cache-Control: private``. ``Strict-Transport-Security`` goes only on
    responses to https requests (the scheme as the proxy middleware resolved it). When the app
    raises before responding, a 500 carrying the headers is sent and the exception re-raised.
    WebSocket, lifespan and unknown scopes pass through untouched.

    Args:
        app: The ASGI application to wrap.
        content_security_policy: Directive to sources (see ``DEFAULT_CSP``, ``NONCE``), or
            None for no ``Content-Security-Policy``. Defaults to ``DEFAULT_CSP``.
        content_security_policy_report_only: Directives of a second, report-only policy
            (``Content-Security-Policy-Report-Only``), independent of the enforced one.
            Defaults to None.
        report_uri: URL added as ``report-uri`` to both policies. Defaults to None.
        report_to: Reporting API group name to URL, sent as ``Reporting-Endpoints``; the first
            group becomes both policies' ``report-to`` directive, and its URL their
            ``report-uri`` too (for browsers without the Reporting API) unless ``report_uri``
            or the policy names one. Defaults to None.
        strict_directives: Refuse directive names CSP Level 3 does not define. Defaults to
            False: unknown names pass through.
        strict_transport_security: Send ``Strict-Transport-Security`` on responses to https
            requests (never over http, RFC 6797 §7.2). Defaults to True.
        strict_transport_security_max_age: Seconds browsers remember to use https. Defaults to
            31536000 (a year).
        strict_transport_security_include_subdomains: Add ``includeSubDomains``. Defaults to
            True.
        strict_transport_security_preload: Add ``preload``; needs a max age of at least a year
            and ``includeSubDomains``, as the preload list does. Defaults to False.
        strict_transport_security_exclude_localhost: Send no HSTS to ``localhost`` and
            ``*.localhost`` hosts, which browsers would pin for every local project. Defaults
            to True.
        cross_origin_opener_policy: ``Cross-Origin-Opener-Policy``. Defaults to
            ``"same-origin"``; None removes it.
        cross_origin_resource_policy: ``Cross-Origin-Resource-Policy``. Defaults to
            ``"same-origin"``; use ``"cross-origin"`` for assets other sites embed.
        cross_origin_embedder_policy: ``Cross-Origin-Embedder-Policy`` (``"require-corp"``,
            ``"credentialless"``). Defaults to None: it breaks cross-origin assets.
        origin_agent_cluster: Send ``Origin-Agent-Cluster: ?1``. Defaults to True.
        referrer_policy: ``Referrer-Policy``, one policy or a fallback list. Defaults to
            ``"no-referrer"``.
        x_content_type_options: Send ``X-Content-Type-Options: nosniff``. Defaults to True.
        x_dns_prefetch_control: ``X-DNS-Prefetch-Control``, ``"on"`` or ``"off"``. Defaults to
            ``"off"``.
        x_download_options: Send ``X-Download-Options: noopen`` (old Internet Explorer).
            Defaults to True.
        frame_options: ``X-Frame-Options``, ``"DENY"`` or ``"SAMEORIGIN"``. Defaults to
            ``"SAMEORIGIN"``.
        x_permitted_cross_domain_policies: ``X-Permitted-Cross-Domain-Policies``. Defaults to
            ``"none"``.
        x_xss_protection: Send ``X-XSS-Protection: 0``, which turns off the old, exploitable
            XSS auditors. Defaults to True.
        permissions_policy: Feature to allowlist, sent as ``Permissions-Policy``:
            ``{"camera": [], "geolocation": ["self"], "fullscreen": "*"}``. Defaults to None.
        remove_headers: Response headers the app set that are removed. Defaults to
            ``("X-Powered-By",)``. Headers the server adds after the app (``server``,
            ``date``) are out of reach: turn them off in the server.
        html_only: Send the document headers (CSP, framing, Permissions-Policy, COOP...) only
            on ``text/html`` responses. Defaults to False: every response.
        nonce_cache_control: Mark responses whose CSP carries a nonce
            ``Cache-Control: private`` unless they already say ``private`` or ``no-store``, so a
            shared cache never replays one nonce. Defaults to True.
        mode: ``"set_if_absent"`` keeps every header the app set; ``"override"`` replaces
            them with the middleware's. Defaults to ``"set_if_absent"``.
        overrides: Path pattern (see ``PathTable``) to the keyword arguments above that differ
            there, or False to add nothing on those paths; the first matching pattern wins.

    Raises:
        ValueError: a directive, source, header value, URL, max age or path pattern is
            invalid, or preload is asked without its requirements.
        TypeError: an argument or override has the wrong type or an unknown name.
    """

    __slots__ = ("_overrides", "_policy", "app")

    def __init__(
        self,
        app: ASGIApp,
        *,
        content_security_policy: Directives | None = DEFAULT_CSP,
        content_security_policy_report_only: Directives | None = None,
        report_uri: str | None = None,
        report_to: Mapping[str, str] | None = None,
        strict_directives: bool = False,
        strict_transport_security: bool = True,
        strict_transport_security_max_age: int = _ONE_YEAR,
        strict_transport_security_include_subdomains: bool = True,
        strict_transport_security_preload: bool = False,
        strict_transport_security_exclude_localhost: bool = True,
        cross_origin_opener_policy: str | None = "same-origin",
        cross_origin_resource_policy: str | None = "same-origin",
        cross_origin_embedder_policy: str | None = None,
        origin_agent_cluster: bool = True,
        referrer_policy: str | Sequence[str] | None = "no-referrer",
        x_content_type_options: bool = True,
        x_dns_prefetch_control: str | None = "off",
        x_download_options: bool = True,
        frame_options: str | None = "SAMEORIGIN",
        x_permitted_cross_domain_policies: str | None = "none",
        x_xss_protection: bool = True,
        permissions_policy: Mapping[str, str | Sequence[str]] | None = None,
        remove_headers: Collection[str] = ("X-Powered-By",),
        html_only: bool = False,
        nonce_cache_control: bool = True,
        mode: Literal["set_if_absent", "override"] = "set_if_absent",
        overrides: Mapping[PathPattern, Override] | None = None,
    ) -> None:
        options = _Options(
            content_security_policy=content_security_policy,
            content_security_policy_report_only=content_security_policy_report_only,
            report_uri=report_uri,
            report_to=report_to,
            strict_directives=strict_directives,
            strict_transport_security=strict_transport_security,
            strict_transport_security_max_age=strict_transport_security_max_age,
            strict_transport_security_include_subdomains=strict_transport_security_include_subdomains,
            strict_transport_security_preload=strict_transport_security_preload,
            strict_transport_security_exclude_localhost=strict_transport_security_exclude_localhost,
            cross_origin_opener_policy=cross_origin_opener_policy,
            cross_origin_resource_policy=cross_origin_resource_policy,
            cross_origin_embedder_policy=cross_origin_embedder_policy,
            origin_agent_cluster=origin_agent_cluster,
            referrer_policy=referrer_policy,
            x_content_type_options=x_content_type_options,
            x_dns_prefetch_control=x_dns_prefetch_control,
            x_download_options=x_download_options,
            frame_options=frame_options,
            x_permitted_cross_domain_policies=x_permitted_cross_domain_policies,
            x_xss_protection=x_xss_protection,
            permissions_policy=permissions_policy,
            remove_headers=remove_headers,
            html_only=html_only,
            nonce_cache_control=nonce_cache_control,
            mode=mode,
        )
        self.app = app
        self._policy = _Policy.build(options)
        table: list[tuple[PathPattern, _Policy | Literal[False]]] = []
        for pattern, override in (overrides or {}).items():
            if override is False:
                table.append((pattern, False))
                continue
            if not isinstance(override, Mapping):
                raise TypeError(
                    f"overrides[{pattern!r}] must be a mapping of keyword arguments or False,"
                    f" got {override!r}"
                )
            try:
                replaced = dataclasses.replace(options, **override)
            except TypeError:
                unknown = sorted(set(override) - {f.name for f in dataclasses.fields(_Options)})
                raise TypeError(f"overrides[{pattern!r}] has unknown arguments {unknown}") from None
            table.append((pattern, _Policy.build(replaced)))
        self._overrides = PathTable(table) if table else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        policy = self._policy
        if self._overrides is not None:
            found = self._overrides.lookup(scope, policy)
            if found is False or found is None:
                return await self.app(scope, receive, send)
            policy = found
        secure = is_secure(scope) and not (policy.exclude_localhost and is_localhost(scope))
        nonce: bytes | None = None
        token = None
        if policy.nonced:
            # Fixed before the app runs, so a template or a streamed chunk that reads it late
            # still matches the header (unlike django-csp's lazy nonce).
            nonce, text = new_nonce()
            scope.setdefault("state", {})["csp_nonce"] = text
            token = _csp_nonce.set(text)
        started = False

        def send_with_headers(message: Message) -> Awaitable[None]:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                message["headers"] = with_security_headers(
                    message.get("headers", ()), policy, secure, nonce
                )
            return send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        except Exception:
            # As with CORS: the 500 an outer error handler sends would lack the headers.
            if not started:
                await send_server_error(send, with_security_headers((), policy, secure, nonce))
            raise
        finally:
            if token is not None:
                _csp_nonce.reset(token)


def fastapi_docs_overrides(
    *,
    cdn: str = "https://cdn.jsdelivr.net",
    docs_url: str = "/docs",
    redoc_url: str = "/redoc",
    favicon: str = "https://fastapi.tiangolo.com",
) -> dict[PathPattern, Override]:
    """Per-path ``overrides`` under which FastAPI's Swagger UI and ReDoc pages work.

    Their pages load scripts and styles from ``cdn`` (jsDelivr by default), run an inline
    bootstrap script and inline styles, and ReDoc starts a worker from a ``blob:`` URL and
    loads Google Fonts. The pages' own policy allows ``'unsafe-inline'`` scripts.

    Args:
        cdn: Origin of Swagger UI's and ReDoc's scripts and styles: your own when you serve
            them yourself (``get_swagger_ui_html(swagger_js_url=...)``), or ``"'self'"``.
            Defaults to ``"https://cdn.jsdelivr.net"``, FastAPI's default.
        docs_url: FastAPI's ``docs_url``; its ``/oauth2-redirect`` page is included. Defaults
            to ``"/docs"``.
        redoc_url: FastAPI's ``redoc_url``. Defaults to ``"/redoc"``.
        favicon: Origin of the pages' favicon. Defaults to ``"https://fastapi.tiangolo.com"``.
    """
    _url("cdn", cdn)
    scripts = ("'self'", cdn, "'unsafe-inline'")
    policy: dict[str, Sources] = {
        "default-src": "'self'",
        "base-uri": "'self'",
        "frame-ancestors": "'self'",
        "object-src": "'none'",
        "img-src": ("'self'", "data:", favicon, cdn),
        "script-src": scripts,
        "style-src": (*scripts, "https://fonts.googleapis.com"),
        "font-src": ("'self'", "data:", "https://fonts.gstatic.com"),
        "worker-src": ("'self'", "blob:"),
    }
    override: dict[str, Any] = {"content_security_policy": policy}
    return {
        docs_url: override,
        f"{docs_url}/oauth2-redirect": override,
        redoc_url: override,
    }
