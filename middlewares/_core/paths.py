"""Request-path matching for ``exclude_paths`` and per-path settings, on the ASGI ``path``
relative to ``root_path``; route templates in Starlette's ``{name}`` syntax."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Generic, TypeVar, Union

from .._types import Scope

#: A path pattern: ``"/health"`` (exact), ``"/static/*"`` (that path and everything below it),
#: ``"/items/{id}"`` (a route template: ``{name}`` is one non-empty segment, ``{name:path}``
#: the rest of the path), or a compiled ``re.Pattern`` matched against the whole path.
PathPattern = Union[str, "re.Pattern[str]"]

T = TypeVar("T")

# A template parameter: ``{name}`` or ``{name:path}`` (Starlette's convertors ``str`` and
# ``path``; ``int``, ``float`` and ``uuid`` match one segment, the router checks their format).
_PARAM = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)(?::(str|path|int|float|uuid))?\}")


def _template_regex(pattern: str) -> re.Pattern[str]:
    parts: list[str] = []
    end = 0
    for match in [*_PARAM.finditer(pattern), None]:
        literal = pattern[end : match.start() if match else len(pattern)]
        if "{" in literal or "}" in literal:
            raise ValueError(f"path pattern has a malformed '{{name}}' parameter: {pattern!r}")
        parts.append(re.escape(literal))
        if match:
            parts.append(".+" if match.group(2) == "path" else "[^/]+")
            end = match.end()
    return re.compile("".join(parts))


def _check(pattern: object) -> str:
    if not isinstance(pattern, str) or not pattern.startswith("/"):
        raise ValueError(f"path patterns must be strings starting with '/', got {pattern!r}")
    return pattern


class PathMatcher:
    """Decide whether a request's path is one of a set of patterns.

    Patterns are matched case-sensitively against the path as the app's router sees it: the
    percent-decoded ASGI ``path`` with the ``root_path`` the app is mounted at removed, so
    ``"/health"`` means the same under any mount point. The four kinds:

    - ``"/health"`` matches exactly ``/health`` (not ``/health/``, not ``/healthcare``);
    - ``"/static/*"`` matches ``/static`` and every path below it (``/static/app.js``), never
      ``/staticfiles``;
    - ``"/items/{id}"`` is a route template: ``{id}`` matches one non-empty path segment, so
      ``/items/1`` and ``/items/2`` both match and ``/items/1/x`` does not; ``{rest:path}``
      matches the rest of the path, slashes included;
    - ``re.compile(r"/users/\\d+/avatar")`` must match the whole path (``fullmatch``).

    Args:
        patterns: The patterns; an empty iterable matches nothing.

    Raises:
        ValueError: a string pattern that does not start with ``/``, has ``*`` anywhere but
            a final ``/*``, or has an unbalanced ``{`` or ``}``.
    """

    __slots__ = ("_exact", "_prefixes", "_regexes")

    def __init__(self, patterns: Iterable[PathPattern] = ()) -> None:
        if isinstance(patterns, (str, bytes)):
            raise TypeError(
                f"path patterns must be a list of patterns, got the string {patterns!r}"
            )
        exact: set[str] = set()
        prefixes: list[str] = []
        regexes: list[re.Pattern[str]] = []
        for pattern in patterns:
            kind, value = _compile(pattern)
            if kind == "exact":
                exact.add(value)  # type: ignore[arg-type]
            elif kind == "prefix":
                exact.add(value[:-1] or "/")  # type: ignore[index]
                prefixes.append(value)  # type: ignore[arg-type]
            else:
                regexes.append(value)  # type: ignore[arg-type]
        self._exact = frozenset(exact)
        self._prefixes = tuple(prefixes)
        self._regexes = tuple(regexes)

    def __bool__(self) -> bool:
        return bool(self._exact or self._regexes)

    def matches(self, scope: Scope) -> bool:
        """Return whether the scope's route path matches any pattern."""
        return self.matches_path(route_path(scope))

    def matches_path(self, path: str) -> bool:
        """Return whether ``path`` (already relative to the root path) matches any pattern."""
        return (
            path in self._exact
            or path.startswith(self._prefixes)
            or any(regex.fullmatch(path) for regex in self._regexes)
        )


def _compile(pattern: PathPattern) -> tuple[str, str | re.Pattern[str]]:
    """Classify one pattern: ``("exact", path)``, ``("prefix", stem + "/")`` or
    ``("regex", compiled)``."""
    if isinstance(pattern, re.Pattern):
        return "regex", pattern
    pattern = _check(pattern)
    if pattern.endswith("/*"):
        stem = pattern[:-2]
        if "*" in stem or "{" in stem or "}" in stem:
            raise ValueError(f"'*' may only end a plain path pattern as '/*', got {pattern!r}")
        return "prefix", stem + "/"
    if "*" in pattern:
        raise ValueError(f"'*' may only end a path pattern as '/*', got {pattern!r}")
    if "{" in pattern or "}" in pattern:
        return "regex", _template_regex(pattern)
    return "exact", pattern


class PathTable(Generic[T]):
    """Per-path settings: the value of the first pattern, in the order given, that matches.

    ``PathTable({"/login": strict, "/api/*": relaxed})`` answers ``strict`` for ``/login``,
    ``relaxed`` for ``/api/items`` and ``default`` for anything else. Patterns are those of
    `PathMatcher`; the table is compiled once, and exact paths are found by one dict look-up.

    Args:
        entries: A mapping, or pairs, of pattern to value; the first match wins.
    """

    __slots__ = ("_exact", "_rules")

    def __init__(self, entries: Iterable[tuple[PathPattern, T]] | dict[PathPattern, T]) -> None:
        pairs = list(entries.items() if isinstance(entries, dict) else entries)
        exact: dict[str, tuple[int, T]] = {}
        rules: list[tuple[int, str | re.Pattern[str], T]] = []
        for index, (pattern, value) in enumerate(pairs):
            kind, compiled = _compile(pattern)
            if kind == "exact":
                exact.setdefault(compiled, (index, value))  # type: ignore[arg-type]
            elif kind == "prefix":
                exact.setdefault(compiled[:-1] or "/", (index, value))  # type: ignore[index]
                rules.append((index, compiled, value))
            else:
                rules.append((index, compiled, value))
        self._exact = exact
        self._rules = tuple(rules)

    def __bool__(self) -> bool:
        return bool(self._exact or self._rules)

    def lookup(self, scope: Scope, default: T | None = None) -> T | None:
        """Return the value for the scope's route path, or ``default``."""
        return self.lookup_path(route_path(scope), default)

    def lookup_path(self, path: str, default: T | None = None) -> T | None:
        """Return the value for ``path`` (relative to the root path), or ``default``."""
        found = self._exact.get(path)
        for index, rule, value in self._rules:
            if found is not None and found[0] < index:
                break
            if path.startswith(rule) if isinstance(rule, str) else rule.fullmatch(path):
                return value
        return default if found is None else found[1]


def route_path(scope: Scope) -> str:
    """Return the scope's path relative to its ``root_path`` (ASGI spec, HTTP connection scope).

    Servers and frameworks put the mount point in ``path`` too; this strips it once, only at a
    segment boundary, so a root path of ``/api`` leaves ``/apiary`` alone.
    """
    path: str = scope.get("path", "")
    root: str = scope.get("root_path", "")
    if root and path.startswith(root) and (len(path) == len(root) or path[len(root)] == "/"):
        return path[len(root) :] or "/"
    return path


def route_template(scope: Scope) -> str | None:
    """Return the route template the framework matched (``"/items/{id}"``), or None.

    Known only once the app's router has run, so it is read after ``http.response.start``:
    Starlette and FastAPI put the matched route in ``scope["route"]`` (its ``path`` is the
    template, relative to the mount), Litestar puts ``scope["path_template"]``; a plain string
    in ``scope["route"]`` is taken as is.
    """
    route = scope.get("route")
    if isinstance(route, str):
        return route
    template = getattr(route, "path", None) if route is not None else None
    if isinstance(template, str):
        return template
    template = scope.get("path_template")
    return template if isinstance(template, str) else None
