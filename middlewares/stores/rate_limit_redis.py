"""A Redis rate-limit store: GCRA for every policy of a request in one Lua script call
(``EVALSHA``, ``NOSCRIPT`` answered by loading it), on Redis's own clock (``TIME``)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from ..rate_limit import PolicyState, RateLimit, RateLimitStoreError
from .redis import connection_errors, import_redis

__all__ = ["RedisRateLimitStore"]

# KEYS: one per policy. ARGV: cost, then each policy's interval, tolerance and window in µs;
# a window of 0 means GCRA, else a fixed window of that length aligned to Redis's clock.
# Returns: allowed (1/0), then per policy remaining, reset (µs) and retry after (µs).
# The arithmetic is `charge_limits`'s; the values of all policies are written only when every
# policy allows, so a refused request consumes nothing. Each key expires when it holds nothing
# worth keeping. Numbers are formatted with %.0f: Lua's tostring would print 1.7e+15.
CHARGE_SCRIPT = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local cost = tonumber(ARGV[1])
local allowed = 1
local starts, ends, ceilings, window_ends = {}, {}, {}, {}
for i = 1, #KEYS do
  local interval = tonumber(ARGV[3 * i - 1])
  local tolerance = tonumber(ARGV[3 * i])
  local window = tonumber(ARGV[3 * i + 1])
  local base, ceiling = now, now + tolerance
  if window > 0 then
    base = (math.floor(now / window) + 1) * window
    ceiling = base + window
  end
  local start = tonumber(redis.call('GET', KEYS[i]) or base)
  if start < base then start = base end
  local finish = start + cost * interval
  if finish > ceiling then allowed = 0 end
  starts[i], ends[i], ceilings[i], window_ends[i] = start, finish, ceiling, base
end
local reply = {allowed}
for i = 1, #KEYS do
  local interval = tonumber(ARGV[3 * i - 1])
  local window = tonumber(ARGV[3 * i + 1])
  local used = starts[i]
  if allowed == 1 then
    used = ends[i]
    local expires = used
    if window > 0 then expires = window_ends[i] end
    redis.call('SET', KEYS[i], string.format('%.0f', used),
               'PX', math.ceil((expires - now) / 1000) + 1)
  end
  local reset, retry = used - now, ends[i] - ceilings[i]
  if window > 0 then
    reset = window_ends[i] - now
    if retry > 0 then retry = reset end
  end
  if retry < 0 then retry = 0 end
  local remaining = math.floor((ceilings[i] - used) / interval + 1e-6)
  if remaining < 0 then remaining = 0 end
  reply[3 * i - 1] = remaining
  reply[3 * i] = string.format('%.0f', reset)
  reply[3 * i + 1] = string.format('%.0f', retry)
end
return reply
"""


class RedisRateLimitStore:
    """Keep rate-limit state in Redis, shared by every worker and machine that uses it.

    Each request is one ``EVALSHA`` of a Lua script that reads Redis's clock, applies every policy
    (GCRA or fixed window) and writes all of them or none: one round trip, atomic, and immune to
    clock skew between app machines. A policy's key is ``prefix + "{" + key + "}:" + bucket``: the
    hash tag puts all of a client's policies in one Redis Cluster slot, so the script never fails
    with ``CROSSSLOT``. A Redis error raises `RateLimitStoreError`; the middleware time-boxes the
    call and applies its outage policy. redis-py's asyncio client runs on asyncio only.

    Args:
        url: ``redis://`` URL to connect to; the store owns that connection pool.
        client: A ``redis.asyncio.Redis`` or ``RedisCluster`` the app owns; give this or
            ``url``.
        prefix: Prepended to every key. Defaults to ``"ratelimit:"``.
        timeout: Seconds to wait to connect or for a reply, with ``url`` (the store's pool
            holds up to 1000 connections); a backstop behind the middleware's
            ``store_timeout``. Defaults to 1.

    Raises:
        ImportError: redis-py is not installed.
        ValueError: neither or both of ``url`` and ``client``, or a bad ``timeout``.
    """

    __slots__ = ("_client", "_errors", "_prefix", "_script", "_url")

    def __init__(
        self,
        url: str | None = None,
        *,
        client: Any = None,
        prefix: str = "ratelimit:",
        timeout: float = 1.0,
    ) -> None:
        redis = import_redis("RedisRateLimitStore", url, client, timeout)
        if url is not None:
            from redis.asyncio.retry import Retry
            from redis.backoff import NoBackoff

            # One immediate retry replaces a pooled connection a restart broke; anything
            # longer is the middleware's breaker's job, not a wait inside a request. A burst
            # opens more connections, up to 1000 (redis-py's default pool stops at 100 and
            # fails the rest); a pool that waits for a free connection costs every call more.
            pool = redis.asyncio.ConnectionPool.from_url(
                url,
                max_connections=1000,
                socket_timeout=timeout,
                socket_connect_timeout=timeout,
                retry=Retry(NoBackoff(), 1),
            )
            client = redis.asyncio.Redis.from_pool(pool)
        self._client = client
        self._script = client.register_script(CHARGE_SCRIPT)
        self._errors = connection_errors(redis)
        self._prefix = prefix
        self._url = url

    async def aclose(self) -> None:
        """Close the connection pool this store opened from ``url`` (not an app's client)."""
        if self._url is not None:
            await self._client.aclose()

    def keys_for(self, key: str, limits: Sequence[RateLimit]) -> list[str]:
        """The Redis keys holding ``key``'s state under ``limits``: one hash slot."""
        base = f"{self._prefix}{{{key}}}:"
        return [base + limit.bucket for limit in limits]

    async def charge(
        self, key: str, limits: Sequence[RateLimit], cost: int
    ) -> tuple[bool, Sequence[PolicyState]]:
        """Charge ``cost`` to ``key`` under every policy, all or nothing (`RateLimitStore`)."""
        args = [cost]
        for limit in limits:  # whole µs: integers cost redis-py less to encode than floats
            # The interval rounded down and the tolerance up, so that whole µs never turn a
            # quota away early: 7 intervals of 86400 s / 7 rounded to the nearest µs end 1 µs
            # past the day, and the seventh request of "7/day" would be refused.
            args.append(math.floor(limit.interval * 1e6))
            args.append(math.ceil(limit.tolerance * 1e6))
            args.append(limit.window * 1_000_000 if limit.fixed else 0)
        try:
            reply = await self._script(keys=self.keys_for(key, limits), args=args)
        except self._errors as exc:
            raise RateLimitStoreError(f"Redis rate-limit store failed: {exc!r}") from exc
        states = [
            PolicyState(int(reply[i]), int(reply[i + 1]) / 1e6, int(reply[i + 2]) / 1e6)
            for i in range(1, len(reply), 3)
        ]
        return reply[0] == 1, states
