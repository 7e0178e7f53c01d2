"""Server-side session stores for `middlewares.sessions.SessionMiddleware`."""

from .memory import MemoryStore
from .redis import RedisStore

__all__ = ["MemoryStore", "RedisStore"]
