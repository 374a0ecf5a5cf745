"""The memory backend's run queue: executor work, claimed under expiring leases."""

import asyncio
import heapq
import itertools
import math
import secrets
from functools import partial
from typing import NamedTuple

from avtomatika.core import clock
from avtomatika.storage.base import RunLease
from avtomatika.storage.memory.wakeup import Waiters, take_or_wait

_COMPACT_MIN = 64


class _Entry(NamedTuple):
    ready_at: float
    """When the entry becomes claimable: its run time, or its lease's expiry while leased."""
    token: str | None
    seq: int
    """Identifies the entry's live heap item; older heap items for the job are stale."""


class RunQueue:
    """One entry per job in a dict, ordered by a heap with lazy deletion.

    A leased entry stays in the queue with ``ready_at`` moved to the lease's expiry, so an
    expired lease is claimable again without any sweeper. Waiting claimants sleep on
    :class:`Waiters`; one shared timer wakes a claimant when a delayed entry or a lease
    comes due.
    """

    __slots__ = ("_entries", "_heap", "_seq", "_timer", "_timer_at", "_timer_loop", "_waiters")

    def __init__(self) -> None:
        self._entries: dict[str, _Entry] = {}
        self._heap: list[tuple[float, int, str]] = []
        self._seq = itertools.count()
        self._waiters = Waiters()
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = math.inf
        self._timer_loop: asyncio.AbstractEventLoop | None = None

    def put(self, job_id: str, at: float) -> None:
        """Enqueue the job at ``at``, replacing any queued or leased entry."""
        self._store(job_id, at, None)
        self._signal()

    def release(self, job_id: str, token: str) -> None:
        entry = self._entries.get(job_id)
        if entry is not None and entry.token == token:
            del self._entries[job_id]

    def discard(self, job_id: str) -> None:
        """Remove the job's entry, queued or leased (the job is gone)."""
        self._entries.pop(job_id, None)

    def unclaim(self, job_id: str, token: str) -> None:
        entry = self._entries.get(job_id)
        if entry is not None and entry.token == token:
            self.put(job_id, clock.now())

    def renew(self, job_id: str, token: str, lease_seconds: float) -> bool:
        entry = self._entries.get(job_id)
        if entry is None or entry.token != token:
            return False
        self._store(job_id, clock.now() + lease_seconds, token)
        return True

    async def claim(self, lease_seconds: float, wait_seconds: float) -> RunLease | None:
        take = partial(self._take, lease_seconds)
        return await take_or_wait(take, self._waiters, self._signal, wait_seconds)

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _store(self, job_id: str, at: float, token: str | None) -> None:
        seq = next(self._seq)
        self._entries[job_id] = _Entry(at, token, seq)
        heapq.heappush(self._heap, (at, seq, job_id))
        if len(self._heap) > _COMPACT_MIN and len(self._heap) > 2 * len(self._entries):
            self._heap = [(e.ready_at, e.seq, job_id) for job_id, e in self._entries.items()]
            heapq.heapify(self._heap)

    def _head(self) -> tuple[float, int, str] | None:
        """The earliest live heap item, dropping stale ones on the way."""
        heap = self._heap
        while heap:
            _, seq, job_id = head = heap[0]
            entry = self._entries.get(job_id)
            if entry is not None and entry.seq == seq:
                return head
            heapq.heappop(heap)
        return None

    def _take(self, lease_seconds: float) -> RunLease | None:
        head = self._head()
        now = clock.now()
        if head is None or head[0] > now:
            return None
        heapq.heappop(self._heap)
        lease = RunLease(head[2], secrets.token_hex(8))
        self._store(lease.job_id, now + lease_seconds, lease.token)
        return lease

    def _signal(self) -> None:
        """Wake one waiter if an entry is ready, else arm the timer for the earliest entry."""
        if not self._waiters:
            return
        head = self._head()
        if head is None:
            return
        now = clock.now()
        if head[0] <= now:
            self._waiters.wake_one()
        else:
            self._arm_timer(head[0], now)

    def _arm_timer(self, at: float, now: float) -> None:
        """Keep one timer at the earliest future entry (re-armed if the event loop changed)."""
        loop = asyncio.get_running_loop()
        if self._timer is not None:
            if self._timer_at <= at and self._timer_loop is loop:
                return
            self._timer.cancel()
        self._timer_at = at
        self._timer_loop = loop
        self._timer = loop.call_later(at - now, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_at = math.inf
        self._signal()
