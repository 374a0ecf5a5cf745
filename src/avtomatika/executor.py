"""Claims job steps from the run queue and turns handler actions into committed transitions.

A step runs under a lease that is renewed while the handler works; if this process dies,
the lease expires and another instance runs the step again (handlers are at-least-once),
while the version compare-and-set keeps the job's transition exactly-once.
"""

import asyncio
import logging

from avtomatika.clock import now as clock_now
from avtomatika.config import Config
from avtomatika.errors import StorageUnavailable
from avtomatika.placement import place_tasks
from avtomatika.protocol.constants import RUNNABLE_STATUSES, TERMINAL_STATUSES, JobStatus
from avtomatika.services import Services
from avtomatika.step import run_handler_step, run_resume_step
from avtomatika.storage.base import Effects, RunLease, StorageBackend

logger = logging.getLogger(__name__)

CLAIM_TIMEOUT = 1.0
MAX_LOOP_BACKOFF = 30.0
MAX_STEP_CONFLICTS = 10
OUTAGE_PAUSE = 1.0
"""Seconds the claim loop waits after the storage gave up retrying (an outage)."""


class JobExecutor:
    def __init__(self, services: Services) -> None:
        self._services = services
        self._config = services.config
        self._slots = asyncio.Semaphore(services.config.EXECUTOR_MAX_CONCURRENT_JOBS)
        self._inflight: dict[asyncio.Task[None], RunLease] = {}
        self._stopping = asyncio.Event()
        self._claimer: asyncio.Task[None] | None = None

    async def run(self) -> None:
        """Claim steps until :meth:`stop`; storage errors back off exponentially."""
        storage, config = self._services.storage, self._config
        keeper = asyncio.create_task(self._keep_leases(), name="lease-keeper")
        self._claimer = asyncio.create_task(self._claim_loop(storage, config), name="executor-claims")
        try:
            await self._claimer
        except asyncio.CancelledError:
            if not self._stopping.is_set():
                raise
        finally:
            keeper.cancel()

    async def _claim_loop(self, storage: StorageBackend, config: Config) -> None:
        backoff = 0.0
        while not self._stopping.is_set():
            await self._slots.acquire()
            try:
                lease = await storage.claim_run(
                    config.INSTANCE_ID, config.EXECUTOR_LEASE_SECONDS, CLAIM_TIMEOUT
                )
                backoff = 0.0
            except StorageUnavailable:
                # Logged once per outage by the storage, which has retried already.
                self._slots.release()
                await asyncio.sleep(OUTAGE_PAUSE)
                continue
            except Exception:
                self._slots.release()
                backoff = min(max(backoff * 2, 0.5), MAX_LOOP_BACKOFF)
                logger.exception("Executor could not claim work; retrying in %.1fs", backoff)
                await asyncio.sleep(backoff)
                continue
            if lease is None:
                self._slots.release()
                continue
            task = asyncio.create_task(self._guarded_step(lease))
            self._inflight[task] = lease
            task.add_done_callback(self._step_done)

    def _step_done(self, task: asyncio.Task[None]) -> None:
        self._inflight.pop(task, None)
        self._slots.release()

    async def _keep_leases(self) -> None:
        """Renew the leases of steps still running (long handlers) well before they expire."""
        storage, seconds = self._services.storage, self._config.EXECUTOR_LEASE_SECONDS
        while True:
            await asyncio.sleep(seconds / 3)
            for lease in list(self._inflight.values()):
                try:
                    if not await storage.renew_run(lease, seconds):
                        logger.warning("Lost the lease on job %s; another instance may run it", lease.job_id)
                except StorageUnavailable:
                    break  # logged once per outage by the storage; try again next round
                except Exception:
                    logger.exception("Could not renew the lease on job %s", lease.job_id)

    async def stop(self, timeout: float = 10.0) -> None:
        """Stop claiming; let in-flight steps finish, then cancel the rest and hand them back."""
        self._stopping.set()
        if self._claimer is not None:
            # Waiting for work is cancellation-safe: no entry is claimed for a cancelled waiter.
            self._claimer.cancel()
        if not self._inflight:
            return
        _, pending = await asyncio.wait(list(self._inflight), timeout=timeout)
        leases = [self._inflight[task] for task in pending if task in self._inflight]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        # Hand unfinished steps back at once instead of making others wait for the lease to expire.
        for lease in leases:
            await self._services.storage.enqueue_run(lease.job_id, clock_now())

    async def _guarded_step(self, lease: RunLease) -> None:
        try:
            await self._step(lease)
        except StorageUnavailable:
            # Logged once per outage by the storage; the lease expires and the step runs again.
            logger.debug("Step of job %s interrupted by a storage outage", lease.job_id)
        except Exception:
            # The lease is left to expire so the step is retried later, not hot-looped.
            logger.exception("Step of job %s failed unexpectedly", lease.job_id)

    async def _step(self, lease: RunLease) -> None:
        """Run the job's next step. A step that loses the compare-and-set to another change (a
        result, an event, a cancel) is decided again on the new version, as long as this lease
        still holds the job's queue entry: a change that queued the next step itself took the
        entry over, and that step runs instead. Giving up instead would strand a job whose
        competing change queued nothing (a progress event, one branch result of several)."""
        for _ in range(MAX_STEP_CONFLICTS):
            if await self._attempt(lease):
                return
            if not await self._services.storage.renew_run(lease, self._config.EXECUTOR_LEASE_SECONDS):
                return
        # The lease is left to expire, so the step is retried later, not hot-looped.
        logger.warning(
            "Job %s changed under %d attempts of its step; retrying later", lease.job_id, MAX_STEP_CONFLICTS
        )

    async def _attempt(self, lease: RunLease) -> bool:
        """One try at the step: False if another change to the job won the compare-and-set."""
        storage = self._services.storage
        job = await storage.get_job(lease.job_id)
        if job is None or job.status in TERMINAL_STATUSES:
            await storage.release_run(lease)
            return True
        expected = job.version
        effects = Effects(release_lease=lease.token)
        if job.status in RUNNABLE_STATUSES:
            job, effects = await run_handler_step(self._services, job, lease.token)
        elif job.status == JobStatus.WAITING_FOR_SUB_JOB:
            await run_resume_step(self._services, job, effects)
        elif any(t.worker_id is None for t in job.tasks.values()):
            await place_tasks(job, self._services.dispatcher, self._config, clock_now(), effects)
        else:
            await storage.release_run(lease)
            return True
        return await self._services.commit(job, expected, effects, was_terminal=False)
