"""Places a job's waiting tasks on workers, or schedules another try when none can take them."""

from avtomatika.config import Config
from avtomatika.core.effects import Effects
from avtomatika.core.records import Job
from avtomatika.core.transitions import branch_result, complete_branch, end, is_parallel
from avtomatika.engine.dispatcher import Dispatcher
from avtomatika.protocol.constants import TERMINAL_STATUSES, JobStatus

NO_WORKER_RETRY_MAX_DELAY = 5.0


async def place_tasks(
    job: Job, dispatcher: Dispatcher, config: Config, now: float, effects: Effects
) -> Effects:
    """Push every unplaced task of ``job`` to a chosen worker's queue (as effects).

    A task no worker can take waits, retried with a growing delay, until its dispatch
    timeout (or ``NO_WORKER_WAIT_SECONDS``) runs out; then it fails like a dispatch timeout.
    """
    retry_at: float | None = None
    for active in list(job.tasks.values()):
        if active.worker_id is not None:
            continue
        if job.status in TERMINAL_STATUSES:
            break
        worker = await dispatcher.select(active.spec)
        if worker is not None:
            record = dispatcher.build_task(job, active, worker, now)
            active.worker_id = worker.worker_id
            active.dispatched_at = now
            effects.push_tasks.append(record)
            continue
        waited = now - active.created_at
        limit = active.spec.dispatch_timeout_seconds or config.NO_WORKER_WAIT_SECONDS
        if waited >= limit:
            message = f"No worker took task '{active.spec.type}' within {limit:g}s"
            if is_parallel(job):
                error = {"code": "TIMEOUT_ERROR", "message": message}
                complete_branch(
                    job,
                    active.task_id,
                    branch_result(active.task_id, None, "failure", None, error),
                    now,
                    effects,
                )
                continue
            return end(job, JobStatus.FAILED, now, effects, message)
        delay = min(max(waited / 4, 0.25), NO_WORKER_RETRY_MAX_DELAY)
        retry_at = now + delay if retry_at is None else min(retry_at, now + delay)
    if retry_at is not None and effects.run_at is None:
        effects.run_at = retry_at
    return effects
