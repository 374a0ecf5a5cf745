"""Keys ordered by a rank, for every queue and deadline index a backend keeps in process."""

import heapq
import itertools
from collections.abc import Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)

# Rebuild the heap once stale items outnumber live ones (and there are enough to matter).
_COMPACT_MIN = 64


class LazyHeap(Generic[K]):
    """A heap with lazy deletion: each key has one live rank, lowest first, ties in arrival order.

    Re-ranking or removing a key only updates a dict; its old heap item goes stale and is
    dropped when it surfaces, or when the heap is rebuilt, so every change is O(log n) and
    none searches the heap.
    """

    __slots__ = ("_first", "_heap", "_last", "_live")

    def __init__(self) -> None:
        self._live: dict[K, tuple[float, int]] = {}
        self._heap: list[tuple[float, int, K]] = []
        self._last = itertools.count()
        # Counts down: a key set ``first`` goes ahead of every key of equal rank.
        self._first = itertools.count(-1, -1)

    def __len__(self) -> int:
        return len(self._live)

    def __contains__(self, key: K) -> bool:
        return key in self._live

    def set(self, key: K, rank: float, *, first: bool = False) -> None:
        """Rank ``key`` (replacing its rank), behind others of equal rank unless ``first``."""
        seq = next(self._first if first else self._last)
        self._live[key] = (rank, seq)
        heapq.heappush(self._heap, (rank, seq, key))
        if len(self._heap) > _COMPACT_MIN and len(self._heap) > 2 * len(self._live):
            self._rebuild()

    def discard(self, key: K) -> None:
        self._live.pop(key, None)

    def clear(self) -> None:
        self._live.clear()
        self._heap.clear()

    def head(self) -> tuple[K, float] | None:
        """The lowest-ranked key and its rank, left in place."""
        heap, live = self._heap, self._live
        while heap:
            rank, seq, key = heap[0]
            if live.get(key) == (rank, seq):
                return key, rank
            heapq.heappop(heap)
        return None

    def pop(self) -> K | None:
        """Remove and return the lowest-ranked key."""
        head = self.head()
        if head is None:
            return None
        heapq.heappop(self._heap)
        del self._live[head[0]]
        return head[0]

    def pop_until(self, rank: float) -> list[K]:
        """Remove and return every key ranked at or below ``rank``, lowest first."""
        keys: list[K] = []
        while (head := self.head()) is not None and head[1] <= rank:
            heapq.heappop(self._heap)
            del self._live[head[0]]
            keys.append(head[0])
        return keys

    def smallest(self, limit: int) -> list[K]:
        """Up to ``limit`` lowest-ranked keys, lowest first, left in place."""
        ranked = ((rank, seq, key) for key, (rank, seq) in self._live.items())
        return [key for _, _, key in heapq.nsmallest(limit, ranked)]

    def shift(self, by: float) -> None:
        """Add ``by`` to every rank (order is kept)."""
        self._live = {key: (rank + by, seq) for key, (rank, seq) in self._live.items()}
        self._rebuild()

    def _rebuild(self) -> None:
        self._heap = [(rank, seq, key) for key, (rank, seq) in self._live.items()]
        heapq.heapify(self._heap)
