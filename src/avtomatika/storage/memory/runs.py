"""The memory backend's run queue: executor work, claimed under expiring leases."""

import asyncio
import math
import secrets
from functools import partial

from avtomatika.core import clock
from avtomatika.storage.base import RunLease
from avtomatika.storage.lazy_heap import LazyHeap
from avtomatika.storage.memory.wakeup import Waiters, take_or_wait


class RunQueue:
    """Job ids ranked by when they become claimable: their run time, or while leased their
    lease's expiry, so an expired lease is claimable again without any sweeper.

    Waiting claimants sleep on :class:`Waiters`; one shared timer wakes a claimant when a
    delayed entry or a lease comes due.
    """

    __slots__ = ("_ready", "_timer", "_timer_at", "_timer_loop", "_tokens", "_waiters")

    def __init__(self) -> None:
        self._ready: LazyHeap[str] = LazyHeap()
        self._tokens: dict[str, str] = {}
        """The lease token of each leased entry."""
        self._waiters = Waiters()
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = math.inf
        self._timer_loop: asyncio.AbstractEventLoop | None = None

    def put(self, job_id: str, at: float) -> None:
        """Enqueue the job at ``at``, replacing any queued or leased entry."""
        self._store(job_id, at, None)
        self._signal()

    def release(self, job_id: str, token: str) -> None:
        if self._tokens.get(job_id) == token:
            self.discard(job_id)

    def discard(self, job_id: str) -> None:
        """Remove the job's entry, queued or leased (the job is gone)."""
        self._ready.discard(job_id)
        self._tokens.pop(job_id, None)

    def unclaim(self, job_id: str, token: str) -> None:
        if self._tokens.get(job_id) == token:
            self.put(job_id, clock.now())

    def renew(self, job_id: str, token: str, lease_seconds: float) -> bool:
        if self._tokens.get(job_id) != token:
            return False
        self._ready.set(job_id, clock.now() + lease_seconds)
        return True

    async def claim(self, lease_seconds: float, wait_seconds: float) -> RunLease | None:
        take = partial(self._take, lease_seconds)
        return await take_or_wait(take, self._waiters, self._signal, wait_seconds)

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _store(self, job_id: str, at: float, token: str | None) -> None:
        self._ready.set(job_id, at)
        if token is None:
            self._tokens.pop(job_id, None)
        else:
            self._tokens[job_id] = token

    def _take(self, lease_seconds: float) -> RunLease | None:
        head = self._ready.head()
        now = clock.now()
        if head is None or head[1] > now:
            return None
        lease = RunLease(head[0], secrets.token_hex(8))
        self._store(lease.job_id, now + lease_seconds, lease.token)
        return lease

    def _signal(self) -> None:
        """Wake one waiter if an entry is ready, else arm the timer for the earliest entry."""
        if not self._waiters:
            return
        head = self._ready.head()
        if head is None:
            return
        now = clock.now()
        if head[1] <= now:
            self._waiters.wake_one()
        else:
            self._arm_timer(head[1], now)

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
