"""Request-path matching for ``exclude_paths``, on the ASGI ``path`` relative to ``root_path``."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Union

from .._types import Scope

#: A path pattern: ``"/health"`` (exact), ``"/static/*"`` (that path and everything below it),
#: or a compiled ``re.Pattern`` matched against the whole path.
PathPattern = Union[str, "re.Pattern[str]"]


class PathMatcher:
    """Decide whether a request's path is one of a set of patterns.

    Patterns are matched case-sensitively against the path as the app's router sees it: the
    percent-decoded ASGI ``path`` with the ``root_path`` the app is mounted at removed, so
    ``"/health"`` means the same under any mount point. The three kinds:

    - ``"/health"`` matches exactly ``/health``;
    - ``"/static/*"`` matches ``/static`` and every path below it (``/static/app.js``), never
      ``/staticfiles``;
    - ``re.compile(r"/users/\\d+/avatar")`` must match the whole path (``fullmatch``).

    Args:
        patterns: The patterns; an empty iterable matches nothing.

    Raises:
        ValueError: a string pattern that does not start with ``/``, or has ``*`` anywhere but
            a final ``/*``.
    """

    __slots__ = ("_exact", "_prefixes", "_regexes")

    def __init__(self, patterns: Iterable[PathPattern] = ()) -> None:
        exact: set[str] = set()
        prefixes: list[str] = []
        regexes: list[re.Pattern[str]] = []
        for pattern in patterns:
            if isinstance(pattern, re.Pattern):
                regexes.append(pattern)
                continue
            if not isinstance(pattern, str) or not pattern.startswith("/"):
                raise ValueError(
                    f"path patterns must be strings starting with '/', got {pattern!r}"
                )
            if pattern.endswith("/*"):
                stem = pattern[:-2]
                if "*" in stem:
                    raise ValueError(f"'*' may only end a path pattern as '/*', got {pattern!r}")
                exact.add(stem or "/")
                prefixes.append(stem + "/")
            elif "*" in pattern:
                raise ValueError(f"'*' may only end a path pattern as '/*', got {pattern!r}")
            else:
                exact.add(pattern)
        self._exact = frozenset(exact)
        self._prefixes = tuple(prefixes)
        self._regexes = tuple(regexes)

    def __bool__(self) -> bool:
        return bool(self._exact or self._regexes)

    def matches(self, scope: Scope) -> bool:
        """Return whether the scope's route path matches any pattern."""
        path = route_path(scope)
        return (
            path in self._exact
            or path.startswith(self._prefixes)
            or any(regex.fullmatch(path) for regex in self._regexes)
        )


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
