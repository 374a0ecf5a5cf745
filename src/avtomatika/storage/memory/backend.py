"""The embedded, single-process backend and the default one.

Every operation is atomic because it never awaits between reading and writing state.
Stored records are private copies (jobs as MessagePack bytes), so no caller can change
stored state by mutating an object it passed in or got back. Retention (see
:class:`StorageBackend`) is applied as the state is touched, a few O(1) steps at a time.
"""

from collections.abc import Sequence

from msgspec.structs import replace

from avtomatika.core import clock
from avtomatika.core.effects import Effects
from avtomatika.core.records import HeartbeatUpdate, Job, TaskRecord, WorkerRecord
from avtomatika.protocol.constants import TERMINAL_STATUSES
from avtomatika.storage.base import (
    ClaimedRun,
    IdempotencyClaim,
    KeyHolder,
    RunLease,
    StorageBackend,
    WorkerLoad,
)
from avtomatika.storage.memory.copy import clone, pack_job, unpack_job
from avtomatika.storage.memory.deadlines import DeadlineIndex
from avtomatika.storage.memory.idempotency import IdempotencyKeys
from avtomatika.storage.memory.jobs import JobStore
from avtomatika.storage.memory.runs import RunQueue
from avtomatika.storage.memory.tasks import TaskQueues
from avtomatika.storage.memory.workers import WorkerRegistry


class _Prepared:
    """Effects converted up front, so a record that cannot be stored fails before any change."""

    __slots__ = ("children", "tasks")

    def __init__(self, children: list[tuple[Job, bytes]], tasks: list[TaskRecord]) -> None:
        self.children = children
        self.tasks = tasks


_NOTHING_NEW = _Prepared([], [])


class MemoryStorage(StorageBackend):
    """All state in this process's memory: fast, and gone when the process ends.

    As ``commit`` does for its job, ``create_job`` and the ``create_jobs`` effect set
    ``version = 1`` on the objects passed in, so callers can commit them next.

    Memory is bounded: terminal jobs go after ``job_retention`` (an hour, not Redis's week),
    and beyond ``max_finished_jobs`` the least recently ended go first. The engine sets both from
    ``MEMORY_JOB_RETENTION_SECONDS`` and ``MEMORY_MAX_FINISHED_JOBS``.
    """

    job_retention: float = 3600.0
    max_finished_jobs: int = 10_000
    """How many terminal jobs are kept at most."""

    def __init__(self) -> None:
        self._runs = RunQueue()
        self._jobs = JobStore(self._runs.discard)
        self._locks: dict[str, tuple[str, float]] = {}
        self._watched_at: float | None = None
        self._idempotency = IdempotencyKeys()
        self._deadlines = DeadlineIndex()
        self._tasks = TaskQueues(self._deadlines)
        self._workers = WorkerRegistry(self._deadlines)

    async def close(self) -> None:
        self._runs.close()

    # --- jobs ------------------------------------------------------------------------

    async def create_job(self, job: Job, effects: Effects | None = None) -> bool:
        now = clock.now()
        self._trim_jobs(now)
        if job.id in self._jobs:
            return False
        prepared = self._prepare(job.id, effects)
        data = pack_job(replace(job, version=1))
        job.version = 1
        self._insert_job(job, data, now)
        if effects is not None:
            self._apply(job.id, effects, prepared, now)
        return True

    async def create_job_once(self, job: Job, claim: IdempotencyClaim) -> KeyHolder:
        if job.id in self._jobs:
            raise ValueError(f"Cannot create job {job.id!r}: a job with this id already exists")
        now = clock.now()
        holder = self._idempotency.holder(claim.key, now)
        if holder is not None:
            return holder
        data = pack_job(replace(job, version=1))
        job.version = 1
        holder = KeyHolder(job.id, claim.fingerprint)
        self._idempotency.claim(claim.key, holder, now + claim.ttl)
        self._insert_job(job, data, now)
        return holder

    async def get_job(self, job_id: str) -> Job | None:
        return self._read_job(job_id)

    def _read_job(self, job_id: str) -> Job | None:
        self._trim_jobs(clock.now())
        stored = self._jobs.get(job_id)
        return None if stored is None else unpack_job(stored.data)

    async def commit(self, job: Job, expected_version: int, effects: Effects) -> bool:
        now = clock.now()
        self._trim_jobs(now)
        stored = self._jobs.get(job.id)
        if stored is None or stored.version != expected_version:
            return False
        prepared = self._prepare(job.id, effects)
        version = expected_version + 1
        data = pack_job(replace(job, version=version))
        self._jobs.replace(job.id, version, data, job.status in TERMINAL_STATUSES, now)
        job.version = version
        self._apply(job.id, effects, prepared, now)
        return True

    async def list_jobs(self, client_id: str, limit: int, offset: int) -> list[Job]:
        self._trim_jobs(clock.now())
        return [unpack_job(data) for data in self._jobs.page(client_id, limit, offset)]

    def _trim_jobs(self, now: float) -> None:
        """Forget expired terminal jobs and those beyond the count; every job operation starts
        with it, so the bound holds from the next operation on."""
        self._jobs.trim(now - self.job_retention, self.max_finished_jobs)

    def _prepare(self, job_id: str, effects: Effects | None) -> _Prepared:
        """Check and copy new records; raises ValueError (changing nothing) on a duplicate job id."""
        if effects is None or not (effects.create_jobs or effects.push_tasks):
            return _NOTHING_NEW
        seen = {job_id}
        for child in effects.create_jobs:
            if child.id in seen or child.id in self._jobs:
                raise ValueError(f"Cannot create job {child.id!r}: a job with this id already exists")
            seen.add(child.id)
        children = [(child, pack_job(replace(child, version=1))) for child in effects.create_jobs]
        return _Prepared(children, [clone(task) for task in effects.push_tasks])

    def _apply(self, job_id: str, effects: Effects, prepared: _Prepared, now: float) -> None:
        """Apply effects in the order :class:`Effects` documents."""
        if effects.release_lease is not None:
            self._runs.release(job_id, effects.release_lease)
        for task_id in effects.drop_tasks:
            self._tasks.drop(task_id)
        keep_until = now + self.task_retention
        for task_id in effects.cancel_tasks:
            self._tasks.cancel(task_id, keep_until)
        for task in prepared.tasks:
            self._tasks.push(task)
        for child, data in prepared.children:
            child.version = 1
            self._insert_job(child, data, now)
        if effects.run_at is not None:
            self._runs.put(job_id, effects.run_at)
        for other_id in effects.wake_jobs:
            self._runs.put(other_id, now)

    def _insert_job(self, job: Job, data: bytes, now: float) -> None:
        self._jobs.insert(job.id, job.client_id, data, job.status in TERMINAL_STATUSES, now)
        self._runs.put(job.id, now)

    # --- run queue -------------------------------------------------------------------

    async def enqueue_run(self, job_id: str, at: float) -> None:
        self._runs.put(job_id, at)

    # The contract names the parameter ``timeout``; callers may pass it by keyword.
    async def claim_run(self, owner: str, lease_seconds: float, timeout: float) -> ClaimedRun | None:
        lease = await self._runs.claim(lease_seconds, timeout)
        return None if lease is None else ClaimedRun(lease, self._read_job(lease.job_id))

    async def renew_run(self, lease: RunLease, lease_seconds: float) -> bool:
        return self._runs.renew(lease.job_id, lease.token, lease_seconds)

    async def release_run(self, lease: RunLease) -> None:
        self._runs.release(lease.job_id, lease.token)

    async def unclaim_run(self, lease: RunLease) -> None:
        self._runs.unclaim(lease.job_id, lease.token)

    # --- worker task queues ----------------------------------------------------------

    async def poll_task(self, worker_id: str, timeout: float) -> TaskRecord | None:
        self._workers.polled(worker_id, clock.now())
        return await self._tasks.poll(worker_id, timeout)

    async def requeue_task(self, task_id: str) -> bool:
        return self._tasks.requeue(task_id)

    async def get_tasks(self, task_ids: Sequence[str]) -> list[TaskRecord | None]:
        return self._tasks.get(task_ids)

    async def peek_tasks(self, worker_id: str, limit: int) -> list[TaskRecord]:
        return self._tasks.peek(worker_id, limit)

    async def steal_task(self, task_id: str, from_worker: str, to_worker: str) -> TaskRecord | None:
        return self._tasks.steal(task_id, from_worker, to_worker)

    async def worker_loads(self, worker_ids: Sequence[str]) -> list[WorkerLoad]:
        return self._tasks.loads(worker_ids)

    # --- workers ---------------------------------------------------------------------

    async def register_worker(self, record: WorkerRecord) -> WorkerRecord:
        return self._registry(clock.now()).register(clone(record))

    async def heartbeat_worker(self, worker_id: str, update: HeartbeatUpdate) -> WorkerRecord | None:
        return self._registry(clock.now()).heartbeat(worker_id, clone(update))

    async def get_worker(self, worker_id: str) -> WorkerRecord | None:
        return self._registry(clock.now()).get(worker_id)

    async def find_workers(self, skill: str, limit: int) -> list[WorkerRecord]:
        now = clock.now()
        return self._registry(now).find(skill, limit, now)

    async def list_workers(self) -> list[WorkerRecord]:
        return self._registry(clock.now()).all()

    def _registry(self, now: float) -> WorkerRegistry:
        """The registry, without the workers gone for longer than ``worker_retention``."""
        self._workers.purge(now - self.worker_retention)
        return self._workers

    async def remove_worker(self, worker_id: str) -> list[TaskRecord]:
        self._workers.remove(worker_id)
        return self._tasks.remove_worker(worker_id, clock.now() + self.task_retention)

    async def adjust_reputation(self, worker_id: str, delta: float) -> None:
        self._workers.adjust_reputation(worker_id, delta)

    # --- deadlines -------------------------------------------------------------------

    async def claim_due(self, now: float, limit: int, lease_seconds: float) -> list[str]:
        return self._deadlines.claim_due(now, limit, lease_seconds)

    async def set_deadline(self, key: str, at: float) -> None:
        self._deadlines.set(key, at)

    async def clear_deadline(self, key: str) -> None:
        self._deadlines.discard(key)

    # --- locks -----------------------------------------------------------------------

    async def acquire_lock(self, name: str, owner: str, ttl: float) -> bool:
        now = clock.now()
        held = self._locks.get(name)
        if held is not None and held[0] != owner and held[1] > now:
            return False
        self._locks[name] = (owner, now + ttl)
        return True

    async def stamp_watch(self, now: float, silence: float, grace: float) -> float:
        last, self._watched_at = self._watched_at, now
        if last is None or now - last <= silence:
            return 0.0
        self._deadlines.shift(now - last + grace)
        return now - last

    async def release_lock(self, name: str, owner: str) -> bool:
        held = self._locks.get(name)
        if held is None or held[0] != owner:
            return False
        del self._locks[name]
        return held[1] > clock.now()
