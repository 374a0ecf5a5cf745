"""The memory backend's run queue: executor work, claimed under expiring leases."""

import secrets
from functools import partial

from avtomatika.core import clock
from avtomatika.storage.base import RunLease
from avtomatika.storage.lazy_heap import LazyHeap
from avtomatika.storage.waiting import Attempt, Signal, take_or_wait


class RunQueue:
    """Job ids ranked by when they become claimable: their run time, or while leased their
    lease's expiry, so an expired lease is claimable again without any sweeper.

    Waiting claimants park on a :class:`Signal`, whose timer wakes one when a delayed entry or
    a lease comes due.
    """

    __slots__ = ("_ready", "_signal", "_tokens")

    def __init__(self) -> None:
        self._ready: LazyHeap[str] = LazyHeap()
        self._tokens: dict[str, str] = {}
        """The lease token of each leased entry."""
        self._signal = Signal()

    def put(self, job_id: str, at: float) -> None:
        """Enqueue the job at ``at``, replacing any queued or leased entry."""
        self._store(job_id, at, None)
        if not self._signal:
            return
        if at <= clock.now():
            self._signal.notify()
        else:
            self._signal.arm(at)

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
        return await take_or_wait(partial(self._take, lease_seconds), self._signal, wait_seconds)

    def close(self) -> None:
        self._signal.close()

    def _store(self, job_id: str, at: float, token: str | None) -> None:
        self._ready.set(job_id, at)
        if token is None:
            self._tokens.pop(job_id, None)
        else:
            self._tokens[job_id] = token

    async def _take(self, lease_seconds: float) -> Attempt[RunLease]:
        """One attempt; it never suspends, so nothing is taken for a caller cancelled meanwhile."""
        now = clock.now()
        head = self._ready.head()
        lease = None
        if head is not None and head[1] <= now:
            lease = RunLease(head[0], secrets.token_hex(8))
            self._store(lease.job_id, now + lease_seconds, lease.token)
            head = self._ready.head()
        if head is None:
            return Attempt(lease)
        return Attempt(lease, more=head[1] <= now, next_at=head[1])
