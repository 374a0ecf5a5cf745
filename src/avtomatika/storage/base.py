"""The storage contract: a narrow set of domain operations, each atomic.

Every method either happens whole or not at all. Backends (memory, Redis) implement the
same contract and pass the same conformance suite (``tests/storage/``). The engine never
knows which backend it talks to. Times are epoch seconds from :func:`avtomatika.core.clock.now`.
"""

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, NamedTuple

import msgspec

from avtomatika.core.effects import Effects
from avtomatika.core.records import HeartbeatUpdate, Job, TaskRecord, WorkerRecord


class WorkerLoad(NamedTuple):
    """A worker's tasks: waiting in its queue, and taken by it."""

    queued: int
    running: int

    @property
    def total(self) -> int:
        return self.queued + self.running


class IdempotencyClaim(msgspec.Struct, frozen=True):
    """A client's key for one job creation (the ``Idempotency-Key`` header), claimed with the job."""

    key: str
    """The key as scoped by the caller (its client); opaque to storage."""
    fingerprint: str
    """A hash of what defines the job, so a reused key with another request is told apart."""
    ttl: float
    """Seconds the claim lives, whatever becomes of its job meanwhile."""


class KeyHolder(NamedTuple):
    """The job an idempotency key was claimed for, and the fingerprint it was claimed with."""

    job_id: str
    fingerprint: str


class RunLease(msgspec.Struct, frozen=True):
    """A claim on one job's next executor step. Expires unless renewed or released."""

    job_id: str
    token: str


class ClaimedRun(NamedTuple):
    """A claimed run-queue entry and its job as of the claim: the claimant reads the job next,
    so a backend reads it along with the claim (one round trip, not two)."""

    lease: RunLease
    job: Job | None
    """A private copy; None if the job no longer exists (the claimant just releases the lease)."""


def heartbeat_changes(update: HeartbeatUpdate) -> dict[str, Any]:
    """The worker fields a heartbeat sets: each field of :class:`HeartbeatUpdate` that the worker
    sent (None means unchanged). Backends merge what this returns, so a field added to the
    update reaches every backend with no change to any of them."""
    return {name: value for name in update.__struct_fields__ if (value := getattr(update, name)) is not None}


class StorageBackend(ABC):
    """Domain operations every backend implements atomically.

    Retention: nothing stays forever. A terminal job is gone (read as missing, listed nowhere,
    refused by ``commit``) ``job_retention`` seconds after its last commit; a backend may also
    bound how many terminal jobs it keeps, forgetting the least recently committed first. What
    is stored for a gone job goes with it (a run-queue entry left for it finds no job when
    claimed), except its cancelled tasks: a cancelled task is gone ``task_retention`` seconds
    after its cancellation, whether or not its job still exists. A worker record is gone at the latest
    ``worker_retention`` seconds after its liveness deadline (``expires_at``) passed, with every
    index entry naming it, even if ``remove_worker`` is never called; its ``worker:<id>``
    deadline and its tasks stay, so the watcher still hands them to other workers.
    """

    task_retention: float = 3600.0
    """How long a cancelled task stays visible so its worker learns of the cancellation."""
    job_retention: float = 7 * 24 * 3600.0
    """How long a terminal job stays readable after its last commit."""
    worker_retention: float = 24 * 3600.0
    """How long a gone worker's record (liveness deadline passed) may outlive that deadline."""

    # --- lifecycle -------------------------------------------------------------------

    async def initialize(self) -> None:
        """Prepare connections or scripts. Idempotent."""

    async def close(self) -> None:
        """Release connections. The object is not used afterwards."""

    # --- jobs ------------------------------------------------------------------------

    @abstractmethod
    async def create_job(self, job: Job, effects: Effects | None = None) -> bool:
        """Store a new job at version 1 and enqueue its first step now.

        Returns False (and changes nothing) if a job with this id exists. ``effects`` are
        applied atomically with the creation.
        """

    @abstractmethod
    async def create_job_once(self, job: Job, claim: IdempotencyClaim) -> KeyHolder:
        """Create the job as :meth:`create_job` does and claim ``claim.key`` for it, atomically,
        unless the key is claimed already: then nothing changes and the holder is returned.

        Returns the key's holder: ``job`` itself when it was created. A creation sent again
        after its reply was lost is recognised as done. Raises ValueError (changing nothing)
        if another job with this id exists.
        """

    @abstractmethod
    async def get_job(self, job_id: str) -> Job | None:
        """A copy of the job; mutating it changes nothing stored. None if unknown or gone."""

    @abstractmethod
    async def commit(self, job: Job, expected_version: int, effects: Effects) -> bool:
        """Compare-and-set: if the stored version equals ``expected_version``, store ``job``
        at ``expected_version + 1`` (also set on the passed object) and apply ``effects``.

        Returns False and changes nothing when the version differs or the job is missing.
        """

    @abstractmethod
    async def list_jobs(self, client_id: str, limit: int, offset: int) -> list[Job]:
        """The client's jobs (not the gone ones), newest first."""

    # --- run queue (executor work) ---------------------------------------------------

    @abstractmethod
    async def enqueue_run(self, job_id: str, at: float) -> None:
        """Enqueue the job's next step at ``at`` (replaces a queued or leased entry)."""

    @abstractmethod
    async def claim_run(self, owner: str, lease_seconds: float, timeout: float) -> ClaimedRun | None:
        """Claim the earliest ready entry, waiting up to ``timeout`` seconds for one; returns the
        lease with the job as stored at the claim.

        The entry stays in the queue, invisible until the lease expires; an expired lease
        makes it claimable again (by any owner), so a crashed claimant loses nothing.
        """

    @abstractmethod
    async def renew_run(self, lease: RunLease, lease_seconds: float) -> bool:
        """Extend a lease still held by ``lease.token``; False if it was lost."""

    @abstractmethod
    async def release_run(self, lease: RunLease) -> None:
        """Remove the entry if it is still held by ``lease.token``."""

    @abstractmethod
    async def unclaim_run(self, lease: RunLease) -> None:
        """If ``lease.token`` still holds the entry, make it claimable now, unleased: its step was
        stopped before it changed anything (a stopping instance). Otherwise change nothing: the
        step committed, or the lease was lost to another claimant."""

    # --- worker task queues ----------------------------------------------------------

    @abstractmethod
    async def poll_task(self, worker_id: str, timeout: float) -> TaskRecord | None:
        """Pop the worker's highest-priority queued task (FIFO among equals), waiting up to
        ``timeout`` seconds for one to be pushed; the task becomes RUNNING with
        ``picked_up_at`` set and its deadline moved to ``running_deadline``. Every attempt
        stamps a registered worker's ``last_poll`` (its task channel is alive)."""

    @abstractmethod
    async def requeue_task(self, task_id: str) -> bool:
        """Put a RUNNING task back at the head of its worker's queue (delivery failed)."""

    @abstractmethod
    async def get_tasks(self, task_ids: Sequence[str]) -> list[TaskRecord | None]:
        """Task records by id, in order (None for unknown ids)."""

    @abstractmethod
    async def peek_tasks(self, worker_id: str, limit: int) -> list[TaskRecord]:
        """The worker's queued tasks in pop order, without removing them."""

    @abstractmethod
    async def steal_task(self, task_id: str, from_worker: str, to_worker: str) -> TaskRecord | None:
        """If ``task_id`` is still queued on ``from_worker``, hand it to ``to_worker`` as RUNNING
        (owner reassigned, deadline moved) and return it; else None. The job's own record of the
        owner is not touched here: the caller commits that before handing the task over."""

    @abstractmethod
    async def worker_loads(self, worker_ids: Sequence[str]) -> list[WorkerLoad]:
        """Queued and running tasks per worker, in order."""

    # --- workers ---------------------------------------------------------------------

    @abstractmethod
    async def register_worker(self, record: WorkerRecord) -> WorkerRecord:
        """Insert or replace a worker; a re-registration keeps the stored reputation.
        Indexes it by skill and sets its liveness deadline ``worker:<id>`` to ``expires_at``."""

    @abstractmethod
    async def heartbeat_worker(self, worker_id: str, update: HeartbeatUpdate) -> WorkerRecord | None:
        """Apply a heartbeat; None (and nothing stored) if the worker is unknown."""

    @abstractmethod
    async def get_worker(self, worker_id: str) -> WorkerRecord | None: ...

    @abstractmethod
    async def find_workers(self, skill: str, limit: int) -> list[WorkerRecord]:
        """Up to ``limit`` live workers offering ``skill`` (by skill name or type)."""

    @abstractmethod
    async def list_workers(self) -> list[WorkerRecord]:
        """Every registered worker (administrative use, not a hot path)."""

    @abstractmethod
    async def remove_worker(self, worker_id: str) -> list[TaskRecord]:
        """Deregister a worker; its queued and running tasks are removed and returned (as they
        were). Running ones stay visible as CANCELLED for ``task_retention``, so the worker, if it
        comes back, learns from its heartbeat that they were taken away."""

    @abstractmethod
    async def adjust_reputation(self, worker_id: str, delta: float) -> None:
        """Add ``delta`` to the reputation, clamped to [0, 1]."""

    # --- deadlines -------------------------------------------------------------------

    @abstractmethod
    async def claim_due(self, now: float, limit: int, lease_seconds: float) -> list[str]:
        """Keys whose deadline is ≤ ``now`` (earliest first); each is re-armed at
        ``now + lease_seconds`` so that a crash before handling makes it due again."""

    @abstractmethod
    async def set_deadline(self, key: str, at: float) -> None: ...

    @abstractmethod
    async def clear_deadline(self, key: str) -> None: ...

    # --- locks -----------------------------------------------------------------------

    @abstractmethod
    async def acquire_lock(self, name: str, owner: str, ttl: float) -> bool:
        """Take or extend (when ``owner`` already holds it) a lock that expires after ``ttl``."""

    @abstractmethod
    async def release_lock(self, name: str, owner: str) -> bool:
        """Release only if held by ``owner`` (compare-and-delete)."""

    @abstractmethod
    async def stamp_watch(self, now: float, silence: float, grace: float) -> float:
        """Record that an instance is watching at ``now``.

        If the previous stamp is older than ``silence``, nobody could hear workers in between
        (every instance was down, or storage was): the clock is paused for that gap, so every
        deadline moves later by the gap plus ``grace`` (time to be heard again), in the same
        atomic step. Returns the gap (0.0 when there was none, or no stamp before)."""


def task_deadline_key(task_id: str) -> str:
    return f"task:{task_id}"


def worker_deadline_key(worker_id: str) -> str:
    return f"worker:{worker_id}"
