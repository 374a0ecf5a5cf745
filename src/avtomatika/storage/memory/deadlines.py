"""The memory backend's deadline index: key -> epoch time, earliest first."""

import heapq
import itertools

# Rebuild the heap once stale entries outnumber live ones (and there are enough to matter).
_COMPACT_MIN = 64


class DeadlineIndex:
    """A heap with lazy deletion: replacing or clearing a key leaves its old heap entry stale."""

    __slots__ = ("_due", "_heap", "_seq")

    def __init__(self) -> None:
        self._due: dict[str, tuple[float, int]] = {}
        self._heap: list[tuple[float, int, str]] = []
        self._seq = itertools.count()

    def set(self, key: str, at: float) -> None:
        entry = (at, next(self._seq))
        self._due[key] = entry
        heapq.heappush(self._heap, (at, entry[1], key))
        if len(self._heap) > _COMPACT_MIN and len(self._heap) > 2 * len(self._due):
            self._heap = [(at, seq, key) for key, (at, seq) in self._due.items()]
            heapq.heapify(self._heap)

    def shift(self, by: float) -> None:
        """Move every deadline later by ``by`` seconds."""
        self._due = {key: (at + by, seq) for key, (at, seq) in self._due.items()}
        self._heap = [(at, seq, key) for key, (at, seq) in self._due.items()]
        heapq.heapify(self._heap)

    def clear(self, key: str) -> None:
        self._due.pop(key, None)

    def take_due(self, until: float) -> list[str]:
        """Remove and return every key due at or before ``until``, earliest first."""
        heap = self._heap
        keys: list[str] = []
        while heap and heap[0][0] <= until:
            at, seq, key = heapq.heappop(heap)
            if self._due.get(key) == (at, seq):
                del self._due[key]
                keys.append(key)
        return keys

    def claim_due(self, now: float, limit: int, lease_seconds: float) -> list[str]:
        """Up to ``limit`` due keys, earliest first, each re-armed at ``now + lease_seconds``."""
        heap = self._heap
        keys: list[str] = []
        while heap and len(keys) < limit:
            at, seq, key = heap[0]
            if self._due.get(key) != (at, seq):
                heapq.heappop(heap)
            elif at > now:
                break
            else:
                heapq.heappop(heap)
                keys.append(key)
        # Re-arm only after collecting, so a zero lease cannot return a key twice.
        for key in keys:
            self.set(key, now + lease_seconds)
        return keys
