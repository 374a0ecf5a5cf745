"""The memory backend's deadline index: key -> epoch time, earliest first."""

from avtomatika.storage.lazy_heap import LazyHeap


class DeadlineIndex(LazyHeap[str]):
    """Deadlines by key; a claim re-arms what it hands out, as a lease would."""

    __slots__ = ()

    def claim_due(self, now: float, limit: int, lease_seconds: float) -> list[str]:
        """Up to ``limit`` due keys, earliest first, each re-armed at ``now + lease_seconds``."""
        keys: list[str] = []
        while len(keys) < limit and (head := self.head()) is not None and head[1] <= now:
            keys.append(head[0])
            self.discard(head[0])
        # Re-arm only after collecting, so a zero lease cannot return a key twice.
        for key in keys:
            self.set(key, now + lease_seconds)
        return keys
