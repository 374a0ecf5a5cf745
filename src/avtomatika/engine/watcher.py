"""Owns every deadline: task dispatch/result/execution timeouts and worker liveness.

Run-queue leases need no watcher: an expired lease simply makes the step claimable again.
The watcher runs under a distributed lock so two instances never act on the same deadline;
claimed deadlines are re-armed, so a watcher that dies mid-cycle loses nothing.
"""

import asyncio
import contextlib
import logging
from collections.abc import Callable

from avtomatika.core.clock import now as clock_now
from avtomatika.core.effects import Effects
from avtomatika.core.records import Job, TaskRecord, TaskState
from avtomatika.core.transitions import live_task, redispatch, task_failed, task_not_taken
from avtomatika.engine.dispatcher import takes_no_tasks
from avtomatika.engine.services import Change, Services
from avtomatika.errors import StorageUnavailable
from avtomatika.storage.base import task_deadline_key, worker_deadline_key

logger = logging.getLogger(__name__)

LOCK_NAME = "watcher"
CLAIM_LEASE_SECONDS = 30.0


class Watcher:
    def __init__(self, services: Services) -> None:
        self._services = services
        self._stopping = asyncio.Event()
        interval = services.config.WATCHER_INTERVAL_SECONDS
        self._silence = 3 * interval + 1.0
        """Every instance stamps every interval; a longer gap means none could hear workers."""

    async def run(self) -> None:
        """Stamp and, holding the lock, handle deadlines; the stamping has its own loop so that
        a long cycle never looks like silence."""
        stamping = asyncio.create_task(self._stamp_loop())
        try:
            await self._watch_loop()
        finally:
            stamping.cancel()
            await asyncio.gather(stamping, return_exceptions=True)

    async def _stamp_loop(self) -> None:
        while not self._stopping.is_set():
            with contextlib.suppress(StorageUnavailable):  # logged once per outage by the storage
                await self.stamp()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self._services.config.WATCHER_INTERVAL_SECONDS)

    async def stamp(self) -> None:
        """Record that this instance watches; after a silence (every instance or storage down),
        the storage pauses every deadline's clock for it and adds one worker TTL, so heartbeats
        and results that could not land meanwhile have time to."""
        storage, config = self._services.storage, self._services.config
        gap = await storage.stamp_watch(clock_now(), self._silence, config.worker_ttl)
        if gap:
            logger.warning(
                "Nobody could hear workers for %.0fs (every instance or storage was down); "
                "every deadline moves %.0fs later",
                gap,
                gap + config.worker_ttl,
            )

    async def _watch_loop(self) -> None:
        config = self._services.config
        interval = config.WATCHER_INTERVAL_SECONDS
        lock_ttl = max(interval * 3, 10.0)
        while not self._stopping.is_set():
            try:
                if await self._services.storage.acquire_lock(LOCK_NAME, config.INSTANCE_ID, lock_ttl):
                    await self.tick()
            except StorageUnavailable:
                pass  # logged once per outage by the storage; the next cycle tries again
            except Exception:
                logger.exception("Watcher cycle failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), interval)
        await self._services.storage.release_lock(LOCK_NAME, config.INSTANCE_ID)

    def stop(self) -> None:
        self._stopping.set()

    async def tick(self) -> int:
        """Handle every due deadline once; returns how many were handled.

        It stamps first, so that after a silence no deadline is judged before the clock paused."""
        storage, config = self._services.storage, self._services.config
        await self.stamp()
        now = clock_now()
        keys = await storage.claim_due(now, config.WATCHER_LIMIT, CLAIM_LEASE_SECONDS)
        for key in keys:
            kind, _, ident = key.partition(":")
            try:
                if kind == "task":
                    await self._task_deadline(ident)
                elif kind == "worker":
                    await self._worker_expired(ident)
                else:
                    await storage.clear_deadline(key)
            except StorageUnavailable:
                raise  # ends the cycle: the other deadlines would meet the same outage
            except Exception:
                logger.exception("Deadline %s not handled; it will fire again", key)
        return len(keys)

    async def _task_deadline(self, task_id: str) -> None:
        storage = self._services.storage
        record = (await storage.get_tasks([task_id]))[0]
        if record is None:
            await storage.clear_deadline(task_deadline_key(task_id))
            return
        if record.state == TaskState.QUEUED and not record.expired_while_queued(clock_now()):
            await self._check_poller(record)
            return
        timed_out = record.state != TaskState.CANCELLED

        def change(job: Job) -> Change[bool]:
            if not timed_out or live_task(job, task_id) is None:
                return Change(True, Effects(drop_tasks=[task_id]))
            return Change(True, self._timeout(job, record, Effects(drop_tasks=[task_id])))

        # The committed effects drop the task or re-arm its deadline; an orphan only loses its deadline.
        if not await self._services.update(record.job_id, change, False):
            await storage.clear_deadline(task_deadline_key(task_id))

    async def _check_poller(self, record: TaskRecord) -> None:
        """A task still queued at its poll check: if its worker has stopped taking tasks (a free
        slot, but no poll for longer than a long-poll lasts), place the task elsewhere; else
        check again later."""
        storage, config = self._services.storage, self._services.config
        now = clock_now()
        worker = await storage.get_worker(record.worker_id)
        load = (await storage.worker_loads([record.worker_id]))[0]
        if worker is not None and not takes_no_tasks(worker, load, now, config.poll_silence_limit):
            due = [d for d in (record.dispatch_deadline, record.result_deadline) if d is not None]
            await storage.set_deadline(
                task_deadline_key(record.task_id), min([now + config.poll_silence_limit, *due])
            )
            return
        logger.warning(
            "Worker %s takes no tasks (a free slot but no poll for over %.0fs); moving its queued task %s",
            record.worker_id,
            config.poll_silence_limit,
            record.task_id,
        )
        self._services.dispatcher.forget(record.worker_id)
        await self._services.update(record.job_id, self._orphan_change(record), None)

    def _timeout(self, job: Job, record: TaskRecord, effects: Effects) -> Effects:
        now = clock_now()
        active = job.tasks[record.task_id]
        if record.state == TaskState.QUEUED:
            message = f"Task '{active.spec.type}' was not picked up before its dispatch deadline"
            return task_not_taken(job, active, message, now, effects)
        # It ran too long: the worker is told to stop (cancelled), and the task is retried.
        effects.drop_tasks.remove(record.task_id)
        effects.cancel_tasks.append(record.task_id)
        error = {"code": "TIMEOUT_ERROR", "message": f"Task '{active.spec.type}' exceeded its deadline"}
        return task_failed(job, active, error, now, self._services.config.retry_policy, effects)

    async def _worker_expired(self, worker_id: str) -> None:
        storage = self._services.storage
        worker = await storage.get_worker(worker_id)
        now = clock_now()
        if worker is not None and worker.expires_at > now:
            await storage.set_deadline(worker_deadline_key(worker_id), worker.expires_at)
            return
        orphans = await storage.remove_worker(worker_id)
        await storage.clear_deadline(worker_deadline_key(worker_id))
        self._services.dispatcher.forget(worker_id)
        logger.warning("Worker %s missed its heartbeats; re-dispatching %d task(s)", worker_id, len(orphans))
        for record in orphans:
            await self._services.update(record.job_id, self._orphan_change(record), None)

    def _orphan_change(self, record: TaskRecord) -> Callable[[Job], Change[None]]:
        return lambda job: self._orphaned(job, record)

    def _orphaned(self, job: Job, record: TaskRecord) -> Change[None]:
        active = live_task(job, record.task_id)
        if active is None:
            return Change(None)
        now = clock_now()
        if record.state == TaskState.QUEUED:
            return Change(None, redispatch(job, active, now, Effects(drop_tasks=[record.task_id])))
        error = {"code": "TIMEOUT_ERROR", "message": f"Worker {record.worker_id} died while running the task"}
        return Change(
            None, task_failed(job, active, error, now, self._services.config.retry_policy, Effects())
        )
