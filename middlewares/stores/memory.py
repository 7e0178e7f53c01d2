"""An in-process session store with TTL eviction and a bounded size."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

__all__ = ["MemoryStore"]


class MemoryStore:
    """Keep sessions in a dict of this process, for one-process apps and tests.

    Entries expire after their TTL (checked on access and when new entries arrive). When
    ``max_entries`` is reached the least recently written entry is evicted, so a flood of
    visitors cannot grow memory without bound. Each worker process has its own store: with
    several workers or machines use ``RedisStore``.

    Args:
        max_entries: Most sessions kept at once. Defaults to 10 000.
        clock: Monotonic clock in seconds; tests inject a fake one.
    """

    __slots__ = ("_clock", "_entries", "_max_entries")

    def __init__(
        self, *, max_entries: int = 10_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if isinstance(max_entries, bool) or not isinstance(max_entries, int) or max_entries < 1:
            raise ValueError(f"max_entries must be an integer >= 1, got {max_entries!r}")
        self._max_entries = max_entries
        self._clock = clock
        # id -> (expires at, data); ordered from least to most recently written.
        self._entries: OrderedDict[str, tuple[float, bytes]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def _live(self, session_id: str, now: float) -> tuple[float, bytes] | None:
        entry = self._entries.get(session_id)
        if entry is not None and entry[0] <= now:
            del self._entries[session_id]
            return None
        return entry

    async def load(self, session_id: str) -> bytes | None:
        """Return the data of a live session, or None."""
        entry = self._live(session_id, self._clock())
        return None if entry is None else entry[1]

    async def create(self, session_id: str, data: bytes, ttl: int) -> bool:
        """Store a new session unless ``session_id`` is live; evict to stay within bounds."""
        now = self._clock()
        if self._live(session_id, now) is not None:
            return False
        entries = self._entries
        # Expired entries are oldest-written first only if TTLs are equal; sweep a few anyway.
        while entries:
            oldest_id, (expires, _) = next(iter(entries.items()))
            if expires > now and len(entries) < self._max_entries:
                break
            del entries[oldest_id]
        entries[session_id] = (now + ttl, data)
        return True

    async def update(self, session_id: str, data: bytes, ttl: int) -> bool:
        """Replace a live session's data and TTL; False if it expired or was deleted."""
        now = self._clock()
        if self._live(session_id, now) is None:
            return False
        self._entries[session_id] = (now + ttl, data)
        self._entries.move_to_end(session_id)
        return True

    async def delete(self, session_id: str) -> None:
        """Remove a session if present."""
        self._entries.pop(session_id, None)
