"""Storage backends: one contract (:class:`StorageBackend`), an embedded and a Redis backend."""

import importlib
from typing import Any

from avtomatika.core.effects import Effects
from avtomatika.storage.base import RunLease, StorageBackend
from avtomatika.storage.memory.backend import MemoryStorage

__all__ = ["Effects", "MemoryStorage", "RunLease", "StorageBackend"]

_REDIS_MODULE = "avtomatika.storage.redis.backend"
# Top-level packages of the 'redis' extra; a missing one means the extra is not installed.
_REDIS_EXTRA = frozenset({"redis", "hiredis", "zstandard"})


def __getattr__(name: str) -> Any:
    """Import ``RedisStorage`` on first access, so the memory backend needs no Redis packages."""
    if name != "RedisStorage":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    try:
        module = importlib.import_module(_REDIS_MODULE)
    except ImportError as exc:
        missing = exc.name or ""
        if missing != _REDIS_MODULE and missing.partition(".")[0] not in _REDIS_EXTRA:
            raise
        raise ImportError("RedisStorage needs the 'redis' extra: pip install 'avtomatika[redis]'") from exc
    return module.RedisStorage
