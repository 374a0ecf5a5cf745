"""The memory backend's idempotency keys: key -> the job it was claimed for, until it expires."""

from avtomatika.storage.base import KeyHolder
from avtomatika.storage.lazy_heap import LazyHeap


class IdempotencyKeys:
    """Claims with an expiry; expired ones are forgotten whenever a key is looked up, so the
    table holds only keys of the last TTL."""

    __slots__ = ("_expiry", "_held")

    def __init__(self) -> None:
        self._held: dict[str, KeyHolder] = {}
        self._expiry: LazyHeap[str] = LazyHeap()

    def holder(self, key: str, now: float) -> KeyHolder | None:
        for expired in self._expiry.pop_until(now):
            del self._held[expired]
        return self._held.get(key)

    def claim(self, key: str, holder: KeyHolder, until: float) -> None:
        """Claim a key that :meth:`holder` just found free."""
        self._held[key] = holder
        self._expiry.set(key, until)
