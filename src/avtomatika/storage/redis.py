"""The Redis backend: the storage contract on one Redis primary, shared by any number of
orchestrator instances.

Every change that touches more than one key is one Lua script (``lua/``), so it happens
whole or not at all, and two instances can never both claim one run-queue entry or one task:
leases and lock owners are compared inside the script that acts on them. Records are
MessagePack blobs that Lua never decodes; the few values a script must read (a job's version,
a task's state, owner, priority and deadlines, a worker's reputation) sit beside the blob as
plain hash fields. Deadlines are epoch seconds (W-13).

Redis Cluster is not supported: one job's key carries a ``{job id}`` hash tag, but a single
change also touches worker queues, the run queue, the deadline index and other jobs, which
live in other slots, and scripts derive key names from ids they read (a popped queue member
names its task). The scripts declare ``no-cluster`` and refuse to run on a cluster: use a
single primary. Instances compare times from their own clocks, which must be synchronised.

Waiting (``claim_run``, ``poll_task``) holds no connection: see ``_redis_wakeup``. Scripts
that make work ready publish on ``{prefix}:wake``; one pub/sub connection per instance
wakes local waiters, which then make one atomic attempt each.
"""

import asyncio
import secrets
from collections.abc import Sequence
from functools import partial
from typing import Any, NamedTuple, cast

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from avtomatika import clock
from avtomatika.records import HeartbeatUpdate, Job, TaskRecord, TaskState, WorkerRecord
from avtomatika.storage._redis_codec import (
    JOB_DECODER,
    TASK_DECODER,
    WORKER_DECODER,
    heartbeat_fields,
    pack,
    pairs,
    unpack,
    unpack_task,
    unpack_worker,
)
from avtomatika.storage._redis_effects import apply_args, milliseconds, score
from avtomatika.storage._redis_keys import RUNS_MESSAGE, TASKS_MESSAGE, Keys
from avtomatika.storage._redis_listener import WakeListener
from avtomatika.storage._redis_scripts import Lua, Scripts
from avtomatika.storage._redis_wakeup import Attempt, Signal, Signals, shielded, take_or_wait
from avtomatika.storage.base import Effects, RunLease, StorageBackend

DEFAULT_URL = "redis://127.0.0.1:6379/0"
POOL_SIZE = 32
"""Connections of a pool this backend creates from a URL (a ``max_connections`` URL option wins)."""
_TAKE_CONCURRENCY = 8
"""Attempts of waiting callers in flight at once: thousands of long-polls share these."""
_TASK_FIELDS = ("d", "s", "w", "pu")


class _Claim(NamedTuple):
    lease: RunLease
    ready_at: bytes
    """The entry's time before the claim, restored if the claim is given back."""


class RedisStorage(StorageBackend):
    """All state in one Redis primary; any number of instances may share it.

    Pass a ``redis.asyncio.Redis`` client (without ``decode_responses``) or a URL. A client
    created from a URL uses a bounded, blocking pool and no command retries: a retried script
    whose first reply was lost would run twice. A client passed in is used as configured and
    is not closed by :meth:`close`. Terminal jobs expire ``job_retention`` seconds after their
    last commit, cancelled tasks ``task_retention`` seconds after the cancellation.
    """

    def __init__(
        self,
        redis_client: aioredis.Redis | None = None,
        *,
        url: str | None = None,
        prefix: str = "avtomatika",
        task_retention: float = 3600.0,
        job_retention: float = 7 * 24 * 3600,
    ) -> None:
        if redis_client is not None and url is not None:
            raise ValueError("Pass either a Redis client or a URL, not both")
        self._owns_client = redis_client is None
        if redis_client is None:
            pool = aioredis.BlockingConnectionPool.from_url(
                url or DEFAULT_URL, max_connections=POOL_SIZE, retry=Retry(NoBackoff(), 0)
            )
            redis_client = aioredis.Redis(connection_pool=pool)
        elif redis_client.connection_pool.connection_kwargs.get("decode_responses"):
            raise ValueError("RedisStorage needs a client without decode_responses: records are binary")
        self._client = redis_client
        self._keys = Keys(prefix)
        self._scripts = Scripts(redis_client, prefix)
        self.task_retention = task_retention
        self.job_retention = job_retention
        self._runs = Signal()
        self._tasks = Signals()
        self._listener = WakeListener(redis_client, self._keys.channel, self._on_message, self._on_resync)
        self._take_slots = asyncio.Semaphore(_TAKE_CONCURRENCY)
        self._giving_back: set[asyncio.Task[Any]] = set()

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        prefix: str = "avtomatika",
        task_retention: float = 3600.0,
        job_retention: float = 7 * 24 * 3600,
    ) -> "RedisStorage":
        return cls(url=url, prefix=prefix, task_retention=task_retention, job_retention=job_retention)

    # --- lifecycle -------------------------------------------------------------------

    async def initialize(self) -> None:
        """Load the scripts and subscribe to wake-ups; raises if Redis is unreachable."""
        await self._scripts.load()
        await self._listener.start()

    async def close(self) -> None:
        await self._listener.stop()
        self._runs.close()
        if self._giving_back:
            await asyncio.gather(*self._giving_back, return_exceptions=True)
        if self._owns_client:
            await self._client.aclose(close_connection_pool=True)

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
        effects = effects or Effects()
        args = await apply_args(
            "create", job, 0, effects, clock.now(), self.job_retention, self.task_retention
        )
        if not _applied(await self._scripts(Lua.APPLY, *args)):
            return False
        job.version = 1
        for child in effects.create_jobs:
            child.version = 1
        return True

    async def get_job(self, job_id: str) -> Job | None:
        blob = cast(bytes | None, await self._client.hget(self._keys.job(job_id), "d"))
        return None if blob is None else await unpack(blob, JOB_DECODER)

    async def commit(self, job: Job, expected_version: int, effects: Effects) -> bool:
        args = await apply_args(
            "commit", job, expected_version, effects, clock.now(), self.job_retention, self.task_retention
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

    async def claim_run(self, owner: str, lease_seconds: float, timeout: float) -> RunLease | None:
        claim = await take_or_wait(partial(self._take_run, lease_seconds), self._runs, timeout)
        return None if claim is None else claim.lease

    async def renew_run(self, lease: RunLease, lease_seconds: float) -> bool:
        until = clock.now() + lease_seconds
        return bool(await self._scripts(Lua.RENEW_RUN, lease.job_id, lease.token, until) == 1)

    async def release_run(self, lease: RunLease) -> None:
        await self._scripts(Lua.RELEASE_RUN, lease.job_id, lease.token)

    async def _take_run(self, lease_seconds: float) -> Attempt[_Claim]:
        async with self._take_slots:
            return await shielded(self._claim_once(lease_seconds), self._unclaim, self._giving_back)

    async def _claim_once(self, lease_seconds: float) -> Attempt[_Claim]:
        now, token = clock.now(), secrets.token_hex(8)
        job_id, ready_at, head = await self._scripts(Lua.CLAIM_RUN, now, now + lease_seconds, token)
        next_at = float(head) if head else None
        if not job_id:
            return Attempt(None, next_at=next_at)
        claim = _Claim(RunLease(job_id.decode(), token), ready_at)
        return Attempt(claim, more=next_at is not None and next_at <= now, next_at=next_at)

    async def _unclaim(self, claim: _Claim) -> None:
        await self._scripts(Lua.UNCLAIM_RUN, claim.lease.job_id, claim.lease.token, claim.ready_at)

    # --- worker task queues ----------------------------------------------------------

    async def poll_task(self, worker_id: str, timeout: float) -> TaskRecord | None:
        with self._tasks.hold(worker_id) as signal:
            return await take_or_wait(partial(self._take_task, worker_id), signal, timeout)

    async def requeue_task(self, task_id: str) -> bool:
        return bool(await self._scripts(Lua.REQUEUE_TASK, task_id) == 1)

    async def get_tasks(self, task_ids: Sequence[str]) -> list[TaskRecord | None]:
        if not task_ids:
            return []
        async with self._client.pipeline(transaction=False) as pipe:
            for task_id in task_ids:
                pipe.hmget(self._keys.task(task_id), _TASK_FIELDS)
            rows = await pipe.execute()
        return [await unpack_task(row) for row in rows]

    async def peek_tasks(self, worker_id: str, limit: int) -> list[TaskRecord]:
        if limit <= 0:
            return []
        rows = await self._scripts(Lua.PEEK_TASKS, worker_id, limit)
        return [record for row in rows if (record := await unpack_task(row)) is not None]

    async def steal_task(self, task_id: str, from_worker: str, to_worker: str) -> TaskRecord | None:
        now = clock.now()
        blob = await self._scripts(Lua.STEAL_TASK, task_id, from_worker, to_worker, now)
        return None if blob is None else await _started(blob, to_worker, now)

    async def worker_loads(self, worker_ids: Sequence[str]) -> list[int]:
        if not worker_ids:
            return []
        async with self._client.pipeline(transaction=False) as pipe:
            for worker_id in worker_ids:
                pipe.zcard(self._keys.worker_queue(worker_id))
                pipe.scard(self._keys.worker_running(worker_id))
            counts = await pipe.execute()
        return [queued + running for queued, running in zip(counts[::2], counts[1::2], strict=True)]

    async def _take_task(self, worker_id: str) -> Attempt[TaskRecord]:
        async with self._take_slots:
            return await shielded(self._pop_task(worker_id), self._give_back_task, self._giving_back)

    async def _pop_task(self, worker_id: str) -> Attempt[TaskRecord]:
        now = clock.now()
        blob, still_queued = await self._scripts(Lua.POLL_TASK, worker_id, now)
        if not blob:
            return Attempt(None)
        return Attempt(await _started(blob, worker_id, now), more=still_queued > 0)

    async def _give_back_task(self, record: TaskRecord) -> None:
        await self.requeue_task(record.task_id)

    # --- workers ---------------------------------------------------------------------

    async def register_worker(self, record: WorkerRecord) -> WorkerRecord:
        blob = await pack(record)
        names = sorted(record.skill_names())
        expires_at = score(record.expires_at, "Worker expires_at")
        reputation = await self._scripts(
            Lua.REGISTER_WORKER, record.worker_id, blob, record.reputation, expires_at, len(names), *names
        )
        stored = await unpack(blob, WORKER_DECODER)
        stored.reputation = float(reputation)
        return stored

    async def heartbeat_worker(self, worker_id: str, update: HeartbeatUpdate) -> WorkerRecord | None:
        fields = heartbeat_fields(update)
        args: list[str | bytes | int | float] = [worker_id, score(update.expires_at, "Heartbeat expires_at")]
        args += ["0" if update.skills is None else "1", len(fields)]
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
        fields = cast(dict[bytes, bytes], await self._client.hgetall(self._keys.worker(worker_id)))
        return await unpack_worker(fields)

    async def find_workers(self, skill: str, limit: int) -> list[WorkerRecord]:
        if limit <= 0:
            return []
        rows = await self._scripts(Lua.FIND_WORKERS, skill, clock.now(), limit)
        return await _workers(rows)

    async def list_workers(self) -> list[WorkerRecord]:
        return await _workers(await self._scripts(Lua.LIST_WORKERS))

    async def remove_worker(self, worker_id: str) -> list[TaskRecord]:
        rows = await self._scripts(Lua.REMOVE_WORKER, worker_id)
        return [record for row in rows if (record := await unpack_task(row)) is not None]

    async def adjust_reputation(self, worker_id: str, delta: float) -> None:
        await self._scripts(Lua.ADJUST_REPUTATION, worker_id, score(delta, "Reputation delta"))

    # --- deadlines -------------------------------------------------------------------

    async def claim_due(self, now: float, limit: int, lease_seconds: float) -> list[str]:
        if limit <= 0:
            return []
        due = await self._scripts(Lua.CLAIM_DUE, score(now, "now"), limit, now + lease_seconds)
        return [key.decode() for key in due]

    async def set_deadline(self, key: str, at: float) -> None:
        await self._client.zadd(self._keys.deadlines, {key: score(at, f"Deadline {key!r}")})

    async def clear_deadline(self, key: str) -> None:
        await self._client.zrem(self._keys.deadlines, key)

    # --- locks -----------------------------------------------------------------------

    async def acquire_lock(self, name: str, owner: str, ttl: float) -> bool:
        return bool(await self._scripts(Lua.ACQUIRE_LOCK, name, owner, milliseconds(ttl)) == 1)

    async def release_lock(self, name: str, owner: str) -> bool:
        return bool(await self._scripts(Lua.RELEASE_LOCK, name, owner) == 1)


def _applied(result: Any) -> bool:
    """The apply script's answer: 1 applied, 0 refused (exists / version differs), or a clash."""
    if isinstance(result, list):
        clash = result[1].decode()
        raise ValueError(f"Cannot create job {clash!r}: a job with this id already exists")
    return bool(result == 1)


async def _started(blob: bytes, worker_id: str, picked_up_at: float) -> TaskRecord:
    """A task a script just marked RUNNING on ``worker_id`` (its blob keeps the pushed state)."""
    record = await unpack(blob, TASK_DECODER)
    record.state = TaskState.RUNNING
    record.worker_id = worker_id
    record.picked_up_at = picked_up_at
    return record


async def _workers(rows: Sequence[Sequence[bytes]]) -> list[WorkerRecord]:
    found = [await unpack_worker(pairs(row)) for row in rows]
    return [record for record in found if record is not None]
