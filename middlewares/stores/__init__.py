"""Server-side stores: sessions (`middlewares.sessions.SessionMiddleware`) and rate-limit
state (`middlewares.rate_limit.RateLimitMiddleware`)."""

from .memory import MemoryStore
from .rate_limit_memory import MemoryRateLimitStore
from .rate_limit_redis import RedisRateLimitStore
from .redis import RedisStore

__all__ = ["MemoryRateLimitStore", "MemoryStore", "RedisRateLimitStore", "RedisStore"]
