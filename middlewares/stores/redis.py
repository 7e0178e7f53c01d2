"""A Redis session store over redis-py's asyncio client (RESP ``GET``, ``SET NX|XX EX``,
``DEL``): one round trip per read or write, TTLs enforced by Redis."""

from __future__ import annotations

from typing import Any

from ..sessions import SessionStoreError

__all__ = ["RedisStore"]


def import_redis(owner: str, url: str | None, client: Any, timeout: float) -> Any:
    """Import ``redis.asyncio`` for the store class ``owner`` and check its connection
    arguments: exactly one of ``url`` and ``client``, and a ``timeout`` in seconds > 0.

    Raises:
        ImportError: redis-py is not installed.
        ValueError: neither or both of ``url`` and ``client``, or a bad ``timeout``.
    """
    try:
        import redis.asyncio
    except ImportError:  # pragma: no cover - redis is installed wherever tests run
        raise ImportError(
            f"{owner} needs the 'redis' extra: pip install 'middlewares[redis]'"
        ) from None
    if (url is None) == (client is None):
        raise ValueError(f"{owner} needs exactly one of url or client")
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
        raise ValueError(f"timeout must be a number of seconds > 0, got {timeout!r}")
    return redis


def connection_errors(redis: Any) -> tuple[type[Exception], ...]:
    """What a dead, stopped or unreachable server raises; anything else is a bug to surface.

    An unreachable Redis Cluster raises ``RedisClusterException``, which is not a
    ``RedisError``."""
    return (redis.RedisError, redis.exceptions.RedisClusterException, OSError, TimeoutError)


class RedisStore:
    """Keep sessions in Redis, shared by every worker and machine that uses the same server.

    Each session is one string key ``prefix + id`` with a TTL. Creation uses ``SET NX`` and
    updates ``SET XX``, so a client-chosen id is never adopted and a session deleted by a
    concurrent request (a logout) is never written back. A Redis error or a reply slower than
    ``timeout`` raises `SessionStoreError` instead of hanging or losing data. redis-py's
    asyncio client runs on asyncio only.

    Args:
        url: ``redis://`` URL to connect to; the store owns that connection pool.
        client: A ``redis.asyncio.Redis`` the app owns (its own timeouts apply); give this or
            ``url``.
        prefix: Prepended to every key. Defaults to ``"session:"``.
        timeout: Seconds to wait for a connection or a reply, with ``url``. Defaults to 2.

    Raises:
        ImportError: redis-py is not installed.
        ValueError: neither or both of ``url`` and ``client``, or a bad ``timeout``.
    """

    __slots__ = ("_client", "_errors", "_prefix", "_url")

    def __init__(
        self,
        url: str | None = None,
        *,
        client: Any = None,
        prefix: str = "session:",
        timeout: float = 2.0,
    ) -> None:
        redis = import_redis("RedisStore", url, client, timeout)
        if url is not None:
            client = redis.asyncio.from_url(
                url, socket_timeout=timeout, socket_connect_timeout=timeout
            )
        self._client = client
        self._errors = connection_errors(redis)
        self._prefix = prefix
        self._url = url

    async def aclose(self) -> None:
        """Close the connection pool this store opened from ``url`` (not an app's client)."""
        if self._url is not None:
            await self._client.aclose()

    def _failed(self, operation: str, exc: Exception) -> SessionStoreError:
        return SessionStoreError(f"Redis session store failed to {operation}: {exc!r}")

    async def load(self, session_id: str) -> bytes | None:
        """``GET`` the session."""
        try:
            value = await self._client.get(self._prefix + session_id)
        except self._errors as exc:
            raise self._failed("read a session", exc) from exc
        return None if value is None else bytes(value)

    async def create(self, session_id: str, data: bytes, ttl: int) -> bool:
        """``SET key data NX EX ttl``: store a new session unless the id is taken."""
        try:
            done = await self._client.set(self._prefix + session_id, data, ex=ttl, nx=True)
        except self._errors as exc:
            raise self._failed("create a session", exc) from exc
        return bool(done)

    async def update(self, session_id: str, data: bytes, ttl: int) -> bool:
        """``SET key data XX EX ttl``: replace a session only if it still exists."""
        try:
            done = await self._client.set(self._prefix + session_id, data, ex=ttl, xx=True)
        except self._errors as exc:
            raise self._failed("update a session", exc) from exc
        return bool(done)

    async def delete(self, session_id: str) -> None:
        """``DEL`` the session."""
        try:
            await self._client.delete(self._prefix + session_id)
        except self._errors as exc:
            raise self._failed("delete a session", exc) from exc
