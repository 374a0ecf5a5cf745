"""Places a job's waiting tasks on workers, or schedules another try when none can take them."""

from avtomatika.core.effects import Effects
from avtomatika.core.records import Job
from avtomatika.core.transitions import is_parallel, task_not_taken
from avtomatika.engine.dispatcher import Dispatcher
from avtomatika.protocol.constants import TERMINAL_STATUSES

NO_WORKER_RETRY_MAX_DELAY = 5.0


async def place_tasks(
    job: Job, dispatcher: Dispatcher, no_worker_wait: float, now: float, effects: Effects
) -> Effects:
    """Push every unplaced task of ``job`` to a chosen worker's queue (as effects).

    A task no worker can take waits, retried with a growing delay, until its dispatch
    timeout (or ``NO_WORKER_WAIT_SECONDS``) runs out; then it is not taken, like a dispatch
    timeout (``task_not_taken``: its ``failure`` transition if mapped).
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
        limit = active.spec.dispatch_timeout_seconds or no_worker_wait
        if waited >= limit:
            parallel = is_parallel(job)
            task_not_taken(
                job, active, f"No worker took task '{active.spec.type}' within {limit:g}s", now, effects
            )
            if not parallel:
                return effects
            continue
        delay = min(max(waited / 4, 0.25), NO_WORKER_RETRY_MAX_DELAY)
        retry_at = now + delay if retry_at is None else min(retry_at, now + delay)
    if retry_at is not None and effects.run_at is None:
        effects.run_at = retry_at
    return effects
