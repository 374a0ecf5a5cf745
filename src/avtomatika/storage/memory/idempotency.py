"""The memory backend's idempotency keys: key -> the job it was claimed for, until it expires."""

import heapq

from avtomatika.storage.base import KeyHolder


class IdempotencyKeys:
    """Claims with an expiry; expired ones are forgotten whenever a key is looked up, so the
    table holds only keys of the last TTL (a key is claimed again only once it expired, so
    each live key has exactly one heap entry)."""

    __slots__ = ("_expiry", "_held")

    def __init__(self) -> None:
        self._held: dict[str, KeyHolder] = {}
        self._expiry: list[tuple[float, str]] = []

    def holder(self, key: str, now: float) -> KeyHolder | None:
        while self._expiry and self._expiry[0][0] <= now:
            _, expired = heapq.heappop(self._expiry)
            del self._held[expired]
        return self._held.get(key)

    def claim(self, key: str, holder: KeyHolder, until: float) -> None:
        """Claim a key that :meth:`holder` just found free."""
        self._held[key] = holder
        heapq.heappush(self._expiry, (until, key))
