"""In-memory key-value store handed to handlers through ``data_stores``."""

from collections.abc import Mapping
from typing import Any


class AsyncDictStore:
    """A dict behind the async ``get``/``set`` interface of a cache client such as Redis.

    Async so that a blueprint can switch between this store and a real client without
    changing its handlers. Each operation is atomic within one event loop; the data lives in
    this process only.
    """

    __slots__ = ("_data",)

    def __init__(self, initial_data: Mapping[str, Any] | None = None) -> None:
        self._data: dict[str, Any] = dict(initial_data or {})

    async def get(self, key: str, default: Any = None) -> Any:
        return self._data.get(key, default)

    async def set(self, key: str, value: Any) -> None:
        self._data[key] = value

    async def delete(self, key: str) -> bool:
        """Remove ``key``; True when it existed."""
        return self._data.pop(key, _ABSENT) is not _ABSENT

    async def keys(self) -> list[str]:
        return list(self._data)

    def __repr__(self) -> str:
        return f"AsyncDictStore({len(self._data)} keys)"


_ABSENT = object()
