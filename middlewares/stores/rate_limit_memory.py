"""An in-process rate-limit store: GCRA theoretical arrival times in a bounded dict."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Sequence

from ..rate_limit import PolicyState, RateLimit, charge_limits

__all__ = ["MemoryRateLimitStore"]

# Entries looked at per charge by the sweep beyond the ones it writes: each charge pays for its
# own entries twice over, whatever the number of policies.
_SWEEP = 2


class MemoryRateLimitStore:
    """Keep rate-limit state in a dict of this process, for one-process apps and tests.

    One float per (key, policy), as `charge_limits` defines it. An entry whose allowance is
    whole again holds nothing worth keeping, so each charge also looks at as many of the entries
    charged longest ago as it writes, plus two, and drops them when expired (kept ones go to the
    back), and the table is copied smaller once it is a quarter full: memory follows the clients
    seen within the last window, not all clients ever seen, without a timer thread or a full
    scan. ``max_keys`` bounds it against a flood of fresh keys by dropping the entry charged
    longest ago. Each worker process has its own store: with several workers or machines use
    `RedisRateLimitStore`.

    Args:
        max_keys: Most entries kept at once. Defaults to 1 000 000 (about 150 MB).
        clock: Monotonic clock in seconds; tests inject a fake one.
    """

    __slots__ = ("_clock", "_entries", "_max_keys", "_peak")

    def __init__(
        self, *, max_keys: int = 1_000_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if isinstance(max_keys, bool) or not isinstance(max_keys, int) or max_keys < 1:
            raise ValueError(f"max_keys must be an integer >= 1, got {max_keys!r}")
        self._max_keys = max_keys
        self._clock = clock
        # "key\0bucket" -> the policy's value; ordered from least to most recently charged.
        self._entries: OrderedDict[str, float] = OrderedDict()
        self._peak = 0

    def __len__(self) -> int:
        return len(self._entries)

    async def charge(
        self, key: str, limits: Sequence[RateLimit], cost: int
    ) -> tuple[bool, Sequence[PolicyState]]:
        """Charge ``cost`` to ``key`` under every policy, all or nothing (`RateLimitStore`)."""
        return self.charge_now(key, limits, cost)

    def charge_now(
        self, key: str, limits: Sequence[RateLimit], cost: int
    ) -> tuple[bool, list[PolicyState]]:
        """`charge`, without awaiting: nothing here waits, so it is atomic on the event loop."""
        now = self._clock()
        entries = self._entries
        names = [key + "\0" + limit.bucket for limit in limits]
        get = entries.get
        allowed, values, states = charge_limits([get(name) for name in names], now, limits, cost)
        if allowed:
            move = entries.move_to_end
            for name, value in zip(names, values, strict=True):
                entries[name] = value
                move(name)
        for _ in range(len(names) + _SWEEP):
            for oldest in entries:  # noqa: B007 - the first key, without building an iterator
                break
            else:
                break
            if entries[oldest] <= now:
                del entries[oldest]
            else:
                entries.move_to_end(oldest)
        size = len(entries)
        while size > self._max_keys:
            entries.popitem(last=False)
            size -= 1
        if size > self._peak:
            self._peak = size
        elif self._peak > 64 and size < self._peak // 4:
            # A dict never gives back the table it grew to; copying does, once per quartering.
            self._entries = OrderedDict(entries)
            self._peak = size
        return allowed, states
