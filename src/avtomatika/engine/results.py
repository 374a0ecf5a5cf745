"""Applies a worker's task result to its job exactly once.

Checks, in order: the job exists; the result was not applied already (duplicates are
acknowledged, never re-applied); the task is one the job still waits for (else stale);
the sender owns the task (hijack protection); the job is not over. Then the result is
merged and the job moves, all in one compare-and-set.
"""

from typing import Any

from avtomatika.core.clock import now as clock_now
from avtomatika.core.effects import Effects
from avtomatika.core.records import ActiveTask, Job, TaskRecord
from avtomatika.core.transitions import (
    branch_result,
    complete_branch,
    end,
    go_to,
    is_parallel,
    record_outcome,
    task_failed,
)
from avtomatika.engine.services import Change, Services
from avtomatika.protocol.constants import (
    QUARANTINE_CODES,
    TERMINAL_STATUSES,
    ErrorCode,
    IgnoredReason,
    JobStatus,
    ResultStatus,
)
from avtomatika.protocol.models import ResultResponse, TaskError, TaskResult


def _ignored(reason: IgnoredReason, message: str) -> Change[ResultResponse]:
    return Change(ResultResponse(status="ignored", reason=reason.value, message=message))


def _accepted(transition: str, effects: Effects | None) -> Change[ResultResponse]:
    return Change(ResultResponse(status="accepted", transition=transition), effects)


def error_dict(error: TaskError | str | None) -> dict[str, Any]:
    if error is None:
        return {"code": "TRANSIENT_ERROR", "message": "worker reported failure without an error"}
    if isinstance(error, str):
        return {"code": "TRANSIENT_ERROR", "message": error}
    return {"code": error.code or "TRANSIENT_ERROR", "message": error.message, "details": error.details}


async def apply_result(services: Services, worker_id: str, result: TaskResult) -> ResultResponse:
    record = (await services.storage.get_tasks([result.task_id]))[0]

    def change(job: Job) -> Change[ResultResponse]:
        return _decide(services, job, record, worker_id, result)

    missing = ResultResponse(
        status="ignored", reason=IgnoredReason.JOB_NOT_FOUND.value, message=f"Job {result.job_id} not found."
    )
    response = await services.update(result.job_id, change, missing)
    if response.status == "accepted" and response.transition != "already_applied":
        await _adjust_reputation(services, worker_id, result)
    return response


async def _adjust_reputation(services: Services, worker_id: str, result: TaskResult) -> None:
    reputation = services.config.reputation
    if result.status != ResultStatus.FAILURE:
        worker = await services.dispatcher.worker(worker_id)
        # A worker already at full reputation has nothing to gain; skip the write on the hot path.
        if reputation.reward_success > 0 and (worker is None or worker.reputation < 1.0):
            await services.storage.adjust_reputation(worker_id, reputation.reward_success)
        return
    code = error_dict(result.error)["code"]
    if code == ErrorCode.CONTRACT_VIOLATION_ERROR:
        penalty = reputation.penalty_contract_violation
    elif code in QUARANTINE_CODES:
        penalty = reputation.penalty_task_failure
    else:
        return
    await services.storage.adjust_reputation(worker_id, -penalty)
    services.dispatcher.forget(worker_id)


def _decide(
    services: Services, job: Job, record: TaskRecord | None, worker_id: str, result: TaskResult
) -> Change[ResultResponse]:
    if job.applied(result.task_id):
        return _accepted("already_applied", None)
    active = job.tasks.get(result.task_id)
    if active is None:
        if job.status == JobStatus.CANCELLED:
            return _ignored(IgnoredReason.JOB_CANCELLED, f"Job {job.id} was cancelled.")
        return _ignored(
            IgnoredReason.STALE_TASK,
            f"Result ignored: task_id {result.task_id} is no longer active for job {job.id}.",
        )
    owner = record.worker_id if record is not None and record.job_id == job.id else active.worker_id
    if owner != worker_id:
        return _ignored(
            IgnoredReason.WORKER_MISMATCH, f"Task {result.task_id} is not assigned to worker {worker_id}."
        )
    if job.status in TERMINAL_STATUSES:
        return _ignored(IgnoredReason.JOB_ALREADY_TERMINATED, f"Job {job.id} is already {job.status.value}.")
    return _apply(services, job, active, worker_id, result)


def _apply(
    services: Services, job: Job, active: ActiveTask, worker_id: str, result: TaskResult
) -> Change[ResultResponse]:
    now = clock_now()
    effects = Effects(drop_tasks=[active.task_id])
    status = result.status
    error = error_dict(result.error) if status == ResultStatus.FAILURE else None
    data = result.data
    if result.metadata:
        job.metadata = {**(job.metadata or {}), **result.metadata}
    if is_parallel(job) and status != ResultStatus.FAILURE:
        complete_branch(
            job, active.task_id, branch_result(active.task_id, worker_id, status, data, None), now, effects
        )
        return _accepted("parallel_branch_accepted", effects)
    if status == ResultStatus.FAILURE:
        assert error is not None
        record_outcome(job, active, worker_id, status, None, error, now)
        task_failed(job, active, error, now, services.config.retry_policy, effects)
        return _accepted("failure_handled", effects)
    record_outcome(job, active, worker_id, status, data, None, now)
    job.tasks.pop(active.task_id, None)
    target = active.spec.transitions.get(status)
    if target is None:
        if status == ResultStatus.CANCELLED:
            end(job, JobStatus.CANCELLED, now, effects, "Worker cancelled the task")
            return _accepted("cancelled_handled", effects)
        end(job, JobStatus.FAILED, now, effects, f"Worker returned unhandled status: {status}")
        return _accepted("unhandled_status_failure", effects)
    if isinstance(data, dict):
        job.state_history.update(data)
    go_to(job, target, now, effects)
    transition = "cancelled_handled" if status == ResultStatus.CANCELLED else "success_transition"
    return _accepted(transition, effects)
