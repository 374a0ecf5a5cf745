"""Chooses a worker for a task and builds its queue entry.

Candidates come from the storage's skill index (never a scan of all workers), capped at
``DISPATCHER_MAX_CANDIDATES``, and are cached per skill for a short time because every
dispatch of the same skill would otherwise re-read the same records.
"""

import itertools
import logging
from collections.abc import Callable

import msgspec

from avtomatika.config import Config
from avtomatika.core.clock import now as clock_now
from avtomatika.core.matching import cost_of, is_hot, satisfies
from avtomatika.core.records import ActiveTask, Job, TaskRecord, TaskSpec, WorkerRecord
from avtomatika.protocol.models import SecurityContext, TaskPayload
from avtomatika.storage.base import StorageBackend, WorkerLoad

logger = logging.getLogger(__name__)

CANDIDATE_CACHE_SECONDS = 0.5

Ranked = tuple[WorkerRecord, int]
"""A candidate and its load (queued plus running tasks)."""


class Dispatcher:
    def __init__(self, storage: StorageBackend, config: Config) -> None:
        self._storage = storage
        self._config = config
        self._cache: dict[str, tuple[float, list[WorkerRecord]]] = {}
        self._workers: dict[str, tuple[float, WorkerRecord | None]] = {}
        self._round_robin: dict[str, itertools.count[int]] = {}
        self._unserved: set[str] = set()
        """Task types already warned about: no registered worker serves them."""

    def forget(self, worker_id: str) -> None:
        """Drop cached candidates after a worker registered, changed or died."""
        self._cache.clear()
        self._workers.pop(worker_id, None)

    async def worker(self, worker_id: str) -> WorkerRecord | None:
        """A worker record, cached briefly (polls ask for it on every empty queue)."""
        now = clock_now()
        cached = self._workers.get(worker_id)
        if cached is not None and cached[0] > now:
            return cached[1]
        record = await self._storage.get_worker(worker_id)
        self._workers[worker_id] = (now + CANDIDATE_CACHE_SECONDS, record)
        return record

    async def candidates(self, skill: str) -> list[WorkerRecord]:
        now = clock_now()
        cached = self._cache.get(skill)
        if cached is not None and cached[0] > now:
            return cached[1]
        workers = await self._storage.find_workers(skill, self._config.DISPATCHER_MAX_CANDIDATES)
        self._cache[skill] = (now + CANDIDATE_CACHE_SECONDS, workers)
        return workers

    async def select(self, spec: TaskSpec) -> WorkerRecord | None:
        now = clock_now()
        candidates = await self.candidates(spec.type)
        if not candidates:
            self._warn_unserved(spec.type)
            return None
        eligible = [w for w in candidates if self.eligible(w, spec, now)]
        if not eligible:
            return None
        loads = await self._storage.worker_loads([w.worker_id for w in eligible])
        ranked = [
            (worker, load.total)
            for worker, load in zip(eligible, loads, strict=True)
            if not takes_no_tasks(worker, load, now, self._config.poll_silence_limit)
        ]
        if not ranked:
            return None
        if spec.dispatch_strategy == "round_robin":
            counter = self._round_robin.setdefault(spec.type, itertools.count())
            return ranked[next(counter) % len(ranked)][0]
        return _STRATEGIES[spec.dispatch_strategy](ranked, spec, self._config.DISPATCHER_SOFT_LIMIT)

    def eligible(self, worker: WorkerRecord, spec: TaskSpec, now: float) -> bool:
        """Whether the worker may be given the task at all, whatever the strategy: live, not
        signed off, reputable enough, meeting its requirements and ``max_cost``. A steal asks
        this too, so a thief cannot take what dispatch would never have given it."""
        return (
            worker.status != "offline"
            and worker.expires_at > now
            and worker.reputation >= self._config.REPUTATION_MIN_THRESHOLD
            and satisfies(worker, spec)
        )

    def _warn_unserved(self, task_type: str) -> None:
        """Once per task type: a typo in a blueprint's task type or a worker never started
        otherwise shows only as jobs waiting until their dispatch timeout."""
        if task_type in self._unserved:
            return
        self._unserved.add(task_type)
        logger.warning(
            "No registered worker serves task type '%s'; its tasks wait for one until their dispatch "
            "timeout (default NO_WORKER_WAIT_SECONDS=%gs)",
            task_type,
            self._config.NO_WORKER_WAIT_SECONDS,
        )

    def build_task(self, job: Job, active: ActiveTask, worker: WorkerRecord, now: float) -> TaskRecord:
        spec = active.spec
        dispatch_deadline = _deadline(active.created_at, spec.dispatch_timeout_seconds)
        result_deadline = _deadline(active.created_at, spec.result_timeout_seconds)
        # Keys a SecurityContext lacks are ignored, as on the wire; the types were checked at create.
        security = msgspec.convert(job.security, SecurityContext) if job.security else None
        payload = TaskPayload(
            job_id=job.id,
            task_id=active.task_id,
            type=spec.type,
            params=spec.params,
            priority=spec.priority,
            deadline=result_deadline,
            security=security,
            metadata=job.metadata,
        )
        return TaskRecord(
            task_id=active.task_id,
            job_id=job.id,
            worker_id=worker.worker_id,
            skill=spec.type,
            payload=payload,
            priority=spec.priority,
            enqueued_at=now,
            dispatch_deadline=dispatch_deadline,
            result_deadline=result_deadline,
            execution_timeout=spec.timeout_seconds or self._config.WORKER_TIMEOUT_SECONDS,
            requirements=spec.resource_requirements,
            max_cost=spec.max_cost,
            poll_check_at=now + self._config.poll_silence_limit,
        )


def takes_no_tasks(worker: WorkerRecord, load: WorkerLoad, now: float, silence_limit: float) -> bool:
    """A worker with a free slot that has not polled for longer than a long-poll lasts (plus a
    grace): its task channel is wedged, though it may still heartbeat. A full worker does not
    poll by design, so it is never judged by this."""
    silent_since = max(worker.last_poll, worker.registered_at)
    return load.running < _capacity(worker) and now - silent_since > silence_limit


def _deadline(start: float, seconds: float | None) -> float | None:
    return None if seconds is None else start + seconds


def _capacity(worker: WorkerRecord) -> int:
    return max(worker.resources.max_concurrent_tasks, 1)


def _default(ranked: list[Ranked], spec: TaskSpec, soft_limit: int) -> WorkerRecord:
    """Hot workers first, then the least loaded relative to capacity, then cheapest, then most reputable."""
    return min(
        ranked,
        key=lambda r: (
            not is_hot(r[0], spec),
            r[1] / _capacity(r[0]),
            cost_of(r[0], spec.type),
            -r[0].reputation,
        ),
    )[0]


def _least_connections(ranked: list[Ranked], spec: TaskSpec, soft_limit: int) -> WorkerRecord:
    return min(ranked, key=lambda r: (r[1], -r[0].reputation))[0]


def _cheapest(ranked: list[Ranked], spec: TaskSpec, soft_limit: int) -> WorkerRecord:
    return min(ranked, key=lambda r: (cost_of(r[0], spec.type), r[1] / _capacity(r[0])))[0]


def _best_value(ranked: list[Ranked], spec: TaskSpec, soft_limit: int) -> WorkerRecord:
    return min(ranked, key=lambda r: (cost_of(r[0], spec.type) / max(r[0].reputation, 1e-6), r[1]))[0]


def _overflow(ranked: list[Ranked], spec: TaskSpec, soft_limit: int) -> WorkerRecord:
    """Cheapest worker whose backlog is under the soft limit; otherwise the shortest backlog."""
    by_cost = sorted(ranked, key=lambda r: cost_of(r[0], spec.type))
    for worker, load in by_cost:
        if load - _capacity(worker) < soft_limit:
            return worker
    return min(by_cost, key=lambda r: r[1] - _capacity(r[0]))[0]


_STRATEGIES: dict[str, Callable[[list[Ranked], TaskSpec, int], WorkerRecord]] = {
    "default": _default,
    "least_connections": _least_connections,
    "cheapest": _cheapest,
    "best_value": _best_value,
    "overflow": _overflow,
}
