"""The embedded backend: every structure in this process's memory."""

from avtomatika.storage.memory.backend import MemoryStorage

__all__ = ["MemoryStorage"]
