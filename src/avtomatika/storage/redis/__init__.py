"""The Redis backend: one Lua script per domain operation, our own RESP connections."""

from avtomatika.storage.redis.backend import RedisStorage

__all__ = ["RedisStorage"]
