"""Claims job steps from the run queue and turns handler actions into committed transitions.

A step runs under a lease that is renewed while the handler works; if this process dies,
the lease expires and another instance runs the step again (handlers are at-least-once),
while the version compare-and-set keeps the job's transition exactly-once. A stopping instance
does not make others wait for that: steps it cannot finish in time are handed back (:meth:`drain`).
"""

import asyncio
import logging
from dataclasses import dataclass

from avtomatika.config import Config
from avtomatika.core.clock import now as clock_now
from avtomatika.core.effects import Effects
from avtomatika.core.records import Job
from avtomatika.engine.notify import JobEvent
from avtomatika.engine.placement import place_tasks
from avtomatika.engine.services import Services
from avtomatika.engine.step import run_handler_step, run_resume_step
from avtomatika.errors import StorageUnavailable
from avtomatika.protocol.constants import RUNNABLE_STATUSES, TERMINAL_STATUSES, JobStatus
from avtomatika.storage.base import ClaimedRun, RunLease, StorageBackend

logger = logging.getLogger(__name__)

CLAIM_TIMEOUT = 1.0
MAX_LOOP_BACKOFF = 30.0
MAX_STEP_CONFLICTS = 10
OUTAGE_PAUSE = 1.0
"""Seconds the claim loop waits after the storage gave up retrying (an outage)."""


@dataclass(frozen=True, slots=True)
class Drained:
    """What :meth:`JobExecutor.drain` did with the steps in flight."""

    finished: int
    handed_back: int


class JobExecutor:
    def __init__(self, services: Services) -> None:
        self._services = services
        self._config = services.config
        self._slots = asyncio.Semaphore(services.config.EXECUTOR_MAX_CONCURRENT_JOBS)
        self._inflight: dict[asyncio.Task[None], RunLease] = {}
        self._stopping = asyncio.Event()
        self._claimer: asyncio.Task[None] | None = None
        self._keeper: asyncio.Task[None] | None = None

    async def run(self) -> None:
        """Claim steps until :meth:`stop_claiming`; storage errors back off exponentially.

        The lease keeper outlives this loop when the executor is stopped: :meth:`drain` ends it
        once no step is left in flight."""
        if self._stopping.is_set():
            return
        storage, config = self._services.storage, self._config
        self._keeper = asyncio.create_task(self._keep_leases(), name="lease-keeper")
        self._claimer = asyncio.create_task(self._claim_loop(storage, config), name="executor-claims")
        try:
            await self._claimer
        except asyncio.CancelledError:
            if not self._stopping.is_set():
                raise
        finally:
            if not self._stopping.is_set():
                self._keeper.cancel()

    async def _claim_loop(self, storage: StorageBackend, config: Config) -> None:
        backoff = 0.0
        while not self._stopping.is_set():
            await self._slots.acquire()
            try:
                claimed = await storage.claim_run(
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
            if claimed is None:
                self._slots.release()
                continue
            task = asyncio.create_task(self._guarded_step(claimed))
            self._inflight[task] = claimed.lease
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

    def stop_claiming(self) -> None:
        """Claim no more steps; those in flight go on, their leases renewed, until :meth:`drain`."""
        self._stopping.set()
        if self._claimer is not None:
            # Waiting for work is cancellation-safe: no entry is claimed for a cancelled waiter.
            self._claimer.cancel()

    async def drain(self, seconds: float, hand_back_seconds: float) -> Drained:
        """Stop claiming; let the steps in flight finish for up to ``seconds``, then cancel the
        rest and give their entries back, ready now, so any instance runs them at once instead of
        after their leases expire. ``hand_back_seconds`` bounds the cancelled steps' unwinding,
        and each give-back: one that does not land (storage unreachable) costs nothing but that
        wait, as the lease still expires."""
        self.stop_claiming()
        steps = list(self._inflight)
        pending: set[asyncio.Task[None]] = set()
        if steps:
            _, pending = await asyncio.wait(steps, timeout=seconds)
        leases = [self._inflight[task] for task in pending if task in self._inflight]
        for task in pending:
            task.cancel()
        if pending:
            # A handler that swallows its cancellation is left behind: its step is handed back
            # anyway, and the version compare-and-set refuses whichever of its runs commits second.
            await asyncio.wait(pending, timeout=hand_back_seconds)
        if self._keeper is not None:
            self._keeper.cancel()
        storage = self._services.storage
        handed_back = await asyncio.gather(
            *(asyncio.wait_for(storage.unclaim_run(lease), hand_back_seconds) for lease in leases),
            return_exceptions=True,
        )
        for lease, outcome in zip(leases, handed_back, strict=True):
            if isinstance(outcome, BaseException):
                logger.warning(
                    "Could not hand back job %s (%r); it runs again when its lease expires",
                    lease.job_id,
                    outcome,
                )
        return Drained(finished=len(steps) - len(pending), handed_back=len(leases))

    async def _guarded_step(self, claimed: ClaimedRun) -> None:
        lease = claimed.lease
        try:
            await self._step(claimed)
        except StorageUnavailable:
            # Logged once per outage by the storage; the lease expires and the step runs again.
            logger.debug("Step of job %s interrupted by a storage outage", lease.job_id)
        except Exception:
            # The lease is left to expire so the step is retried later, not hot-looped.
            logger.exception("Step of job %s failed unexpectedly", lease.job_id)

    async def _step(self, claimed: ClaimedRun) -> None:
        """Run the job's next step. A step that loses the compare-and-set to another change (a
        result, an event, a cancel) is decided again on the new version, as long as this lease
        still holds the job's queue entry: a change that queued the next step itself took the
        entry over, and that step runs instead. Giving up instead would strand a job whose
        competing change queued nothing (a progress event, one branch result of several).
        The first attempt starts from the job read with the claim, each later one rereads it."""
        lease, job = claimed
        storage = self._services.storage
        for attempt in range(MAX_STEP_CONFLICTS):
            if attempt:
                job = await storage.get_job(lease.job_id)
            if await self._attempt(lease, job):
                return
            if not await storage.renew_run(lease, self._config.EXECUTOR_LEASE_SECONDS):
                return
        # The lease is left to expire, so the step is retried later, not hot-looped.
        logger.warning(
            "Job %s changed under %d attempts of its step; retrying later", lease.job_id, MAX_STEP_CONFLICTS
        )

    async def _attempt(self, lease: RunLease, job: Job | None) -> bool:
        """One try at the step on ``job`` as stored (None: it is gone): False if another change
        to the job won the compare-and-set."""
        storage = self._services.storage
        if job is None or job.status in TERMINAL_STATUSES:
            await storage.release_run(lease)
            return True
        expected = job.version
        effects = Effects(release_lease=lease.token)
        events: list[JobEvent] = []
        if job.status in RUNNABLE_STATUSES:
            job, effects, events = await run_handler_step(self._services, job, lease.token)
        elif job.status == JobStatus.WAITING_FOR_SUB_JOB:
            await run_resume_step(self._services, job, effects)
        elif any(t.worker_id is None for t in job.tasks.values()):
            await place_tasks(
                job, self._services.dispatcher, self._config.NO_WORKER_WAIT_SECONDS, clock_now(), effects
            )
        else:
            await storage.release_run(lease)
            return True
        return await self._services.commit(job, expected, effects, was_terminal=False, events=events)
