"""The Redis backend: the storage contract on one Redis primary, shared by any number of
orchestrator instances.

Every change that touches more than one key is one Lua script (``lua/``), so it happens whole or
not at all, and two instances never both claim one run-queue entry or task: leases and owners are
compared inside the script that acts on them. Records are MessagePack blobs Lua never decodes; the
few values a script reads (version, task state, owner, priority, deadlines, reputation) sit beside
the blob as plain hash fields. Deadlines are epoch seconds (W-13), from synchronised clocks.

Redis Cluster is not supported: one change touches worker queues, the run queue, the deadline
index and other jobs, in other slots, and scripts derive key names from ids they read. The
scripts declare ``no-cluster``: use a single primary.

Waiting (``claim_run``, ``poll_task``) holds no connection (``storage.waiting``): scripts that
make work ready publish on ``{prefix}:wake``, and one pub/sub connection per instance wakes local
waiters. Every other command goes over one multiplexed connection (``connection``). A claim
returns its job; a lone task read also reads the job, which the caller reads next (``handoff``).
"""

import asyncio
import secrets
from collections.abc import Sequence
from functools import partial
from typing import Any, Literal

import redis.asyncio as aioredis

from avtomatika.core import clock
from avtomatika.core.effects import Effects
from avtomatika.core.records import HeartbeatUpdate, Job, TaskRecord, WorkerRecord
from avtomatika.storage.base import (
    ClaimedRun,
    IdempotencyClaim,
    KeyHolder,
    RunLease,
    StorageBackend,
    WorkerLoad,
)
from avtomatika.storage.redis.clients import open_connections
from avtomatika.storage.redis.codec import (
    JOB_DECODER,
    WORKER_DECODER,
    heartbeat_fields,
    pack,
    pairs,
    started_task,
    unpack,
    unpack_task,
    unpack_worker,
    unpack_workers,
)
from avtomatika.storage.redis.effects import apply_args, milliseconds, score
from avtomatika.storage.redis.handoff import JobHandoff
from avtomatika.storage.redis.keys import RUNS_MESSAGE, TASKS_MESSAGE, Keys
from avtomatika.storage.redis.listener import WakeListener
from avtomatika.storage.redis.retry import Resilient
from avtomatika.storage.redis.scripts import Lua, Scripts
from avtomatika.storage.redis.wakeup import GiveBacks
from avtomatika.storage.waiting import Attempt, Signal, Signals, take_or_wait

DEFAULT_URL = "redis://127.0.0.1:6379/0"
_TAKE_CONCURRENCY = 8
"""Attempts of waiting callers in flight at once: a herd of long-polls woken together (after
a reconnection) reaches Redis a few at a time."""
_TASK_FIELDS = ("d", "s", "w", "pu")


class RedisStorage(StorageBackend):
    """All state in one Redis primary; any number of instances may share it.

    Pass a ``redis.asyncio.Redis`` client (without ``decode_responses``) or a URL. Commands to a
    URL share one multiplexed connection (``connection``), plus one for pub/sub; a URL
    with options it does not implement (TLS, socket timeouts) gets a bounded, blocking redis-py
    pool. Failed or unanswered commands are retried for up to ``retry_seconds`` (every command
    is safe to send again, see ``retry``), then :class:`StorageUnavailable` is raised. A
    client passed in is used as configured and is not closed by :meth:`close`.
    Terminal jobs expire ``job_retention`` seconds after their last commit, cancelled tasks
    ``task_retention`` seconds after the cancellation, worker records ``worker_retention``
    seconds after their liveness deadline (Redis key expiry: no watcher needs to be running).
    """

    def __init__(
        self,
        redis_client: aioredis.Redis | None = None,
        *,
        url: str | None = None,
        prefix: str = "avtomatika",
        task_retention: float = 3600.0,
        job_retention: float = 7 * 24 * 3600,
        retry_seconds: float = 5.0,
    ) -> None:
        if redis_client is not None and url is not None:
            raise ValueError("Pass either a Redis client or a URL, not both")
        self._keys = Keys(prefix)
        commands, subscribe = open_connections(redis_client, url or DEFAULT_URL, self._keys.channel)
        self._redis = Resilient(commands, retry_seconds)
        self._scripts = Scripts(self._redis, prefix)
        self.task_retention = task_retention
        self.job_retention = job_retention
        self._runs = Signal()
        self._tasks = Signals()
        self._listener = WakeListener(subscribe, self._keys.channel, self._on_message, self._on_resync)
        self._take_slots = asyncio.Semaphore(_TAKE_CONCURRENCY)
        self._give_backs = GiveBacks()
        self._handoff = JobHandoff()

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        prefix: str = "avtomatika",
        task_retention: float = 3600.0,
        job_retention: float = 7 * 24 * 3600,
        retry_seconds: float = 5.0,
    ) -> "RedisStorage":
        return cls(
            url=url,
            prefix=prefix,
            task_retention=task_retention,
            job_retention=job_retention,
            retry_seconds=retry_seconds,
        )

    # --- lifecycle -------------------------------------------------------------------

    async def initialize(self) -> None:
        """Load the scripts and subscribe to wake-ups; raises if Redis is unreachable."""
        await self._scripts.load()
        await self._listener.start()

    async def close(self) -> None:
        await self._listener.stop()
        self._runs.close()
        await self._give_backs.wait()
        await self._redis.aclose()

    def _on_message(self, message: bytes) -> None:
        if message == RUNS_MESSAGE:
            self._runs.notify()
        elif message.startswith(TASKS_MESSAGE):
            self._tasks.notify(message[len(TASKS_MESSAGE) :].decode(errors="replace"))

    def _on_resync(self) -> None:
        self._runs.notify_all()
        self._tasks.notify_all()

    # --- jobs ------------------------------------------------------------------------

    async def create_job(self, job: Job, effects: Effects | None = None) -> bool:
        return await self._apply("create", job, 0, effects or Effects())

    async def create_job_once(self, job: Job, claim: IdempotencyClaim) -> KeyHolder:
        self._handoff.void(job.id)
        args = await apply_args(
            "create", job, 0, Effects(), clock.now(), self.job_retention, self.task_retention, claim
        )
        result = await self._scripts(Lua.APPLY, *args)
        if isinstance(result, list) and result[0] == b"claimed":
            return KeyHolder(result[1].decode(), result[2].decode())
        if not _applied(result):
            raise ValueError(f"Cannot create job {job.id!r}: a job with this id already exists")
        job.version = 1
        return KeyHolder(job.id, claim.fingerprint)

    async def get_job(self, job_id: str) -> Job | None:
        blob = self._handoff.take(job_id)
        if blob is None:
            blob = await self._redis.execute("HGET", self._keys.job(job_id), "d")
        return None if blob is None else await unpack(blob, JOB_DECODER)

    async def commit(self, job: Job, expected_version: int, effects: Effects) -> bool:
        return await self._apply("commit", job, expected_version, effects)

    async def _apply(
        self, mode: Literal["create", "commit"], job: Job, expected_version: int, effects: Effects
    ) -> bool:
        self._handoff.void(job.id)
        args = await apply_args(
            mode, job, expected_version, effects, clock.now(), self.job_retention, self.task_retention
        )
        if not _applied(await self._scripts(Lua.APPLY, *args)):
            return False
        job.version = expected_version + 1
        for child in effects.create_jobs:
            child.version = 1
        return True

    async def list_jobs(self, client_id: str, limit: int, offset: int) -> list[Job]:
        if limit <= 0:
            return []
        first = max(offset, 0)
        now_ms = milliseconds(clock.now())
        blobs = await self._scripts(Lua.LIST_JOBS, client_id, first, first + limit - 1, now_ms)
        return [await unpack(blob, JOB_DECODER) for blob in blobs]

    # --- run queue -------------------------------------------------------------------

    async def enqueue_run(self, job_id: str, at: float) -> None:
        await self._scripts(Lua.ENQUEUE_RUN, job_id, score(at, "Run time"), clock.now())

    async def claim_run(self, owner: str, lease_seconds: float, timeout: float) -> ClaimedRun | None:
        return await take_or_wait(partial(self._take_run, lease_seconds), self._runs, timeout)

    async def renew_run(self, lease: RunLease, lease_seconds: float) -> bool:
        until = clock.now() + lease_seconds
        return bool(await self._scripts(Lua.RENEW_RUN, lease.job_id, lease.token, until) == 1)

    async def release_run(self, lease: RunLease) -> None:
        await self._scripts(Lua.RELEASE_RUN, lease.job_id, lease.token)

    async def unclaim_run(self, lease: RunLease) -> None:
        await self._scripts(Lua.UNCLAIM_RUN, lease.job_id, lease.token, clock.now())

    async def _take_run(self, lease_seconds: float) -> Attempt[ClaimedRun]:
        now, token = clock.now(), secrets.token_hex(8)
        unclaim = partial(self._unclaim, token)
        async with self._take_slots:
            reply = await self._scripts.take(unclaim, Lua.CLAIM_RUN, now, now + lease_seconds, token)
        job_id, _, head, blob = reply
        next_at = float(head) if head else None
        if not job_id:
            return Attempt(None, next_at=next_at)
        try:
            job = None if blob is None else await unpack(blob, JOB_DECODER)
        except asyncio.CancelledError:
            # Cancelled while a large blob was decoded in a thread.
            unclaim(reply)
            raise
        claim = ClaimedRun(RunLease(job_id.decode(), token), job)
        return Attempt(claim, more=next_at is not None and next_at <= now, next_at=next_at)

    def _unclaim(self, token: str, reply: list[Any]) -> None:
        """Give back a claim made for a cancelled caller, ready again at its old time."""
        job_id, ready_at = reply[0], reply[1]
        if job_id:
            self._give_backs.spawn(self._scripts(Lua.UNCLAIM_RUN, job_id, token, ready_at))

    # --- worker task queues ----------------------------------------------------------

    async def poll_task(self, worker_id: str, timeout: float) -> TaskRecord | None:
        with self._tasks.hold(worker_id) as signal:
            return await take_or_wait(partial(self._take_task, worker_id), signal, timeout)

    async def requeue_task(self, task_id: str) -> bool:
        return bool(await self._scripts(Lua.REQUEUE_TASK, task_id) == 1)

    async def get_tasks(self, task_ids: Sequence[str]) -> list[TaskRecord | None]:
        if not task_ids:
            return []
        if len(task_ids) == 1:
            *row, job_id, job = await self._scripts(Lua.GET_TASK, task_ids[0])
            if job_id is not None:
                self._handoff.offer(job_id.decode(), job)
            return [await unpack_task(row)]
        rows = await self._redis.execute_many(
            [("HMGET", self._keys.task(task_id), *_TASK_FIELDS) for task_id in task_ids]
        )
        return [await unpack_task(row) for row in rows]

    async def peek_tasks(self, worker_id: str, limit: int) -> list[TaskRecord]:
        if limit <= 0:
            return []
        rows = await self._scripts(Lua.PEEK_TASKS, worker_id, limit)
        return [record for row in rows if (record := await unpack_task(row)) is not None]

    async def steal_task(self, task_id: str, from_worker: str, to_worker: str) -> TaskRecord | None:
        now = clock.now()
        blob = await self._scripts(Lua.STEAL_TASK, task_id, from_worker, to_worker, now)
        return None if blob is None else await started_task(blob, to_worker, now)

    async def worker_loads(self, worker_ids: Sequence[str]) -> list[WorkerLoad]:
        if not worker_ids:
            return []
        commands: list[tuple[str, str]] = []
        for worker_id in worker_ids:
            commands += [
                ("ZCARD", self._keys.worker_queue(worker_id)),
                ("SCARD", self._keys.worker_running(worker_id)),
            ]
        counts = await self._redis.execute_many(commands)
        return [
            WorkerLoad(queued, running) for queued, running in zip(counts[::2], counts[1::2], strict=True)
        ]

    async def _take_task(self, worker_id: str) -> Attempt[TaskRecord]:
        now = clock.now()
        async with self._take_slots:
            reply = await self._scripts.take(self._requeue, Lua.POLL_TASK, worker_id, now)
        blob, still_queued, _ = reply
        if not blob:
            return Attempt(None)
        try:
            record = await started_task(blob, worker_id, now)
        except asyncio.CancelledError:
            # Cancelled while a large blob was decoded in a thread.
            self._requeue(reply)
            raise
        return Attempt(record, more=still_queued > 0)

    def _requeue(self, reply: list[Any]) -> None:
        """Give back a task popped for a cancelled caller, at the head of its queue."""
        task_id = reply[2]
        if task_id:
            self._give_backs.spawn(self.requeue_task(task_id.decode()))

    # --- workers ---------------------------------------------------------------------

    async def register_worker(self, record: WorkerRecord) -> WorkerRecord:
        blob = await pack(record)
        names = sorted(record.skill_names())
        expires_at = score(record.expires_at, "Worker expires_at")
        reputation = await self._scripts(
            Lua.REGISTER_WORKER,
            record.worker_id,
            blob,
            record.reputation,
            expires_at,
            self._retain_until(record.expires_at),
            len(names),
            *names,
        )
        stored = await unpack(blob, WORKER_DECODER)
        stored.reputation = float(reputation)
        return stored

    async def heartbeat_worker(self, worker_id: str, update: HeartbeatUpdate) -> WorkerRecord | None:
        fields = heartbeat_fields(update)
        args: list[str | bytes | int | float] = [worker_id, score(update.expires_at, "Heartbeat expires_at")]
        args += [self._retain_until(update.expires_at), "0" if update.skills is None else "1", len(fields)]
        for name, value in fields:
            args += [name, value]
        if update.skills is None:
            args.append(0)
        else:
            names = sorted(WorkerRecord(worker_id=worker_id, skills=update.skills).skill_names())
            args += [len(names), *names]
        flat = await self._scripts(Lua.HEARTBEAT_WORKER, *args)
        return None if flat is None else await unpack_worker(pairs(flat))

    async def get_worker(self, worker_id: str) -> WorkerRecord | None:
        return await unpack_worker(pairs(await self._scripts(Lua.GET_WORKER, worker_id)))

    async def find_workers(self, skill: str, limit: int) -> list[WorkerRecord]:
        if limit <= 0:
            return []
        now = clock.now()
        rows = await self._scripts(Lua.FIND_WORKERS, skill, now, now - self.worker_retention, limit)
        return await unpack_workers(rows)

    async def list_workers(self) -> list[WorkerRecord]:
        return await unpack_workers(await self._scripts(Lua.LIST_WORKERS))

    async def remove_worker(self, worker_id: str) -> list[TaskRecord]:
        keep_until = clock.now() + self.task_retention
        rows = await self._scripts(
            Lua.REMOVE_WORKER, worker_id, milliseconds(self.task_retention), keep_until
        )
        return [record for row in rows if (record := await unpack_task(row)) is not None]

    async def adjust_reputation(self, worker_id: str, delta: float) -> None:
        await self._scripts(Lua.ADJUST_REPUTATION, worker_id, score(delta, "Reputation delta"))

    def _retain_until(self, expires_at: float) -> int:
        """When a worker record with this liveness deadline expires (epoch ms, for PEXPIREAT)."""
        return milliseconds(expires_at + self.worker_retention)

    # --- deadlines -------------------------------------------------------------------

    async def claim_due(self, now: float, limit: int, lease_seconds: float) -> list[str]:
        if limit <= 0:
            return []
        due = await self._scripts(Lua.CLAIM_DUE, score(now, "now"), limit, now + lease_seconds)
        return [key.decode() for key in due]

    async def set_deadline(self, key: str, at: float) -> None:
        await self._redis.execute("ZADD", self._keys.deadlines, score(at, f"Deadline {key!r}"), key)

    async def clear_deadline(self, key: str) -> None:
        await self._redis.execute("ZREM", self._keys.deadlines, key)

    # --- locks -----------------------------------------------------------------------

    async def acquire_lock(self, name: str, owner: str, ttl: float) -> bool:
        return bool(await self._scripts(Lua.ACQUIRE_LOCK, name, owner, milliseconds(ttl)) == 1)

    async def release_lock(self, name: str, owner: str) -> bool:
        return bool(await self._scripts(Lua.RELEASE_LOCK, name, owner) == 1)

    async def stamp_watch(self, now: float, silence: float, grace: float) -> float:
        return float(await self._scripts(Lua.STAMP_WATCH, repr(now), silence, grace))


def _applied(result: Any) -> bool:
    """The apply script's answer: 1 applied, 0 refused (exists / version differs), or a clash
    (an idempotency key's holder is read by :meth:`RedisStorage.create_job_once` first)."""
    if isinstance(result, list):
        clash = result[1].decode()
        raise ValueError(f"Cannot create job {clash!r}: a job with this id already exists")
    return bool(result == 1)
