"""Pure job state changes: each mutates a job copy and returns the effects to commit with it.

Nothing here touches storage; callers commit the job and the effects in one atomic
compare-and-set, which is what makes every transition exactly-once.
"""

import os
from typing import Any, NamedTuple

from avtomatika.core.effects import Effects
from avtomatika.core.records import ActiveTask, Job, TaskOutcome, TaskSpec
from avtomatika.protocol.constants import (
    FAIL_CODES,
    QUARANTINE_CODES,
    TERMINAL_STATUSES,
    JobStatus,
)


def new_id() -> str:
    """A random UUID4 string, built without the ``uuid.UUID`` object (this is on the hot path)."""
    raw = bytearray(os.urandom(16))
    raw[6] = (raw[6] & 0x0F) | 0x40
    raw[8] = (raw[8] & 0x3F) | 0x80
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def enter(job: Job, state: str) -> None:
    job.current_state = state
    job.path.append(state)


def go_to(job: Job, state: str, now: float, effects: Effects) -> Effects:
    enter(job, state)
    job.status = JobStatus.RUNNING
    job.retry_count = 0
    job.updated_at = now
    effects.run_at = now
    return effects


def end(job: Job, status: JobStatus, now: float, effects: Effects, message: str | None = None) -> Effects:
    """Move the job to a terminal status; outstanding tasks are cancelled and a waiting parent woken."""
    assert status in TERMINAL_STATUSES
    job.status = status
    job.error_message = message
    job.updated_at = now
    job.finished_at = now
    effects.cancel_tasks.extend(t for t in job.tasks if t not in effects.drop_tasks)
    job.tasks = {}
    job.human = None
    if job.parent_job_id:
        effects.wake_jobs.append(job.parent_job_id)
    return effects


def live_task(job: Job, task_id: str) -> ActiveTask | None:
    """The task if the job still waits for it; None once the job moved on or ended."""
    return None if job.status in TERMINAL_STATUSES else job.tasks.get(task_id)


def add_tasks(job: Job, specs: list[TaskSpec], now: float, attempt: int = 1) -> list[ActiveTask]:
    """Register tasks the job now waits for; the executor places them on workers."""
    created = [ActiveTask(task_id=new_id(), spec=spec, created_at=now, attempt=attempt) for spec in specs]
    for active in created:
        job.tasks[active.task_id] = active
    return created


class RetryPolicy(NamedTuple):
    """How often and how soon a failed task or step is tried again."""

    max_retries: int
    base_delay: float
    max_delay: float


def retry_delay(policy: RetryPolicy, attempt: int) -> float:
    """Exponential backoff before attempt ``attempt + 1``."""
    delay: float = policy.base_delay * (2 ** max(attempt - 1, 0))
    return min(delay, policy.max_delay)


def record_progress(job: Job, payload: dict[str, Any], now: float) -> None:
    """A ``progress`` event: ``progress`` (a number) and ``message`` update the job."""
    progress = payload.get("progress")
    if isinstance(progress, int | float) and not isinstance(progress, bool):
        job.progress = float(progress)
    message = payload.get("message")
    if message is not None:
        job.progress_message = str(message)
    job.updated_at = now


def is_parallel(job: Job) -> bool:
    return job.status == JobStatus.WAITING_FOR_PARALLEL_TASKS


def branch_result(
    task_id: str, worker_id: str | None, status: str, data: Any, error: dict[str, Any] | None
) -> dict[str, Any]:
    return {"task_id": task_id, "worker_id": worker_id, "status": status, "data": data, "error": error}


def complete_branch(job: Job, task_id: str, result: dict[str, Any], now: float, effects: Effects) -> Effects:
    """Record one fan-out branch; the last one moves the job to its aggregator state."""
    job.tasks.pop(task_id, None)
    job.aggregation_results[task_id] = result
    job.updated_at = now
    if not job.tasks and job.aggregation_target is not None:
        enter(job, job.aggregation_target)
        job.status = JobStatus.RUNNING
        job.retry_count = 0
        effects.run_at = now
    return effects


def record_outcome(
    job: Job,
    active: ActiveTask,
    worker_id: str | None,
    status: str,
    data: Any,
    error: dict[str, Any] | None,
    now: float,
) -> None:
    job.results.append(
        TaskOutcome(
            task_id=active.task_id,
            worker_id=worker_id,
            state=job.current_state,
            task_type=active.spec.type,
            status=status,
            data=data,
            error=error,
            received_at=now,
        )
    )


def task_failed(
    job: Job,
    active: ActiveTask,
    error: dict[str, Any],
    now: float,
    policy: RetryPolicy,
    effects: Effects,
) -> Effects:
    """Apply a worker failure by error code (protocol.md §8): retry transient errors with
    backoff, quarantine permanent ones, fail on invalid input."""
    code = str(error.get("code") or "TRANSIENT_ERROR")
    message = str(error.get("message") or code)
    job.tasks.pop(active.task_id, None)
    if code not in QUARANTINE_CODES and code not in FAIL_CODES and active.attempt <= policy.max_retries:
        add_tasks(job, [active.spec], now, attempt=active.attempt + 1)
        # Counts every retry made in this state (handler re-runs and every task's, each branch's),
        # not this task's attempt, which would hide the others; a new state starts again at 0.
        job.retry_count += 1
        job.updated_at = now
        effects.run_at = now + retry_delay(policy, active.attempt)
        return effects
    if is_parallel(job):
        result = branch_result(active.task_id, active.worker_id, "failure", None, error)
        return complete_branch(job, active.task_id, result, now, effects)
    failure_state = active.spec.transitions.get("failure")
    if failure_state is not None:
        job.state_history["last_error"] = error
        return go_to(job, failure_state, now, effects)
    if code in FAIL_CODES:
        return end(
            job, JobStatus.FAILED, now, effects, f"Task '{active.spec.type}' failed: {code}: {message}"
        )
    if code in QUARANTINE_CODES:
        return end(
            job, JobStatus.QUARANTINED, now, effects, f"Task '{active.spec.type}' failed: {code}: {message}"
        )
    return end(
        job,
        JobStatus.QUARANTINED,
        now,
        effects,
        f"Task '{active.spec.type}' failed after {active.attempt} attempts: {code}: {message}",
    )


def task_not_taken(job: Job, active: ActiveTask, message: str, now: float, effects: Effects) -> Effects:
    """No worker took the task before its dispatch deadline (or ``NO_WORKER_WAIT_SECONDS``): a
    fan-out branch fails; otherwise the task's ``failure`` transition is taken if mapped, with the
    error in ``state_history["last_error"]``, and the job fails if not."""
    error = {"code": "TIMEOUT_ERROR", "message": message}
    if is_parallel(job):
        result = branch_result(active.task_id, active.worker_id, "failure", None, error)
        return complete_branch(job, active.task_id, result, now, effects)
    failure_state = active.spec.transitions.get("failure")
    if failure_state is None:
        return end(job, JobStatus.FAILED, now, effects, message)
    job.tasks.pop(active.task_id, None)
    job.state_history["last_error"] = error
    return go_to(job, failure_state, now, effects)


def redispatch(job: Job, active: ActiveTask, now: float, effects: Effects) -> Effects:
    """Put a never-started task back up for placement (its worker vanished), same attempt."""
    job.tasks.pop(active.task_id, None)
    add_tasks(job, [active.spec], now, attempt=active.attempt)
    job.updated_at = now
    effects.run_at = now
    return effects
