"""Client-facing job operations: create, read, cancel, approve, list."""

import contextlib
from typing import Any

import msgspec

from avtomatika.blueprints.blueprint import Blueprint
from avtomatika.core.clock import now as clock_now
from avtomatika.core.effects import Effects
from avtomatika.core.records import Job
from avtomatika.core.transitions import end, go_to, new_id
from avtomatika.engine.services import Change, Services
from avtomatika.errors import IdempotencyKeyReused, InvalidRequest, JobNotFound, JobStateConflict
from avtomatika.protocol.constants import IDEMPOTENCY_KEY_HEADER, TERMINAL_STATUSES, JobStatus
from avtomatika.protocol.models import SecurityContext
from avtomatika.storage.base import IdempotencyClaim


def new_job(
    bp: Blueprint,
    client_id: str,
    initial_data: Any,
    *,
    webhook_url: str | None = None,
    dispatch_timeout: float | None = None,
    result_timeout: float | None = None,
    security: dict[str, Any] | None = None,
    metadata: dict[str, Any] | None = None,
    parent_job_id: str | None = None,
) -> Job:
    _check_security(security)
    now = clock_now()
    return Job(
        id=new_id(),
        blueprint_name=bp.name,
        current_state=bp.start_state,
        status=JobStatus.PENDING,
        client_id=client_id,
        created_at=now,
        updated_at=now,
        initial_data=initial_data,
        webhook_url=webhook_url,
        dispatch_timeout=dispatch_timeout,
        result_timeout=result_timeout,
        security=security,
        metadata=metadata,
        parent_job_id=parent_job_id,
        path=[bp.start_state],
    )


def _check_security(security: dict[str, Any] | None) -> None:
    """A job's ``security`` goes to its workers in every task payload as a ``SecurityContext``:
    one that cannot be one is refused here, not found out when the first task is placed."""
    if security is None:
        return
    try:
        msgspec.convert(security, SecurityContext)
    except msgspec.ValidationError as exc:
        raise InvalidRequest(f"Invalid security: {exc}", str(exc)) from None


async def create(services: Services, job: Job, claim: IdempotencyClaim | None = None) -> str:
    """Store and enqueue a new job; returns its id. With a ``claim`` the job is created only if
    the claim's key is free, else the id of the job that claimed it is returned (or
    :class:`IdempotencyKeyReused` raised when that job came from another request)."""
    if claim is None:
        if not await services.storage.create_job(job):
            raise RuntimeError(f"Job id collision: {job.id}")
        return job.id
    holder = await services.storage.create_job_once(job, claim)
    if holder.fingerprint != claim.fingerprint:
        raise IdempotencyKeyReused(
            f"{IDEMPOTENCY_KEY_HEADER} was already used for job {holder.job_id} with a different "
            "request; send a new key to create another job",
            holder.job_id,
        )
    return holder.job_id


async def get_owned(services: Services, job_id: str, client_id: str) -> Job:
    """The job if it belongs to ``client_id``; another client's job is reported as missing."""
    job = await services.storage.get_job(job_id)
    if job is None or job.client_id != client_id:
        raise JobNotFound(job_id)
    return job


async def cancel(services: Services, job_id: str, client_id: str | None) -> Job:
    """Cancel a job: its tasks are withdrawn from queues and their workers told to stop."""

    withdrawn: list[str] = []

    def change(job: Job) -> Change[Job | None]:
        if client_id is not None and job.client_id != client_id:
            return Change(None)
        if job.status in TERMINAL_STATUSES:
            raise JobStateConflict(f"Job {job_id} is already {job.status.value}")
        withdrawn[:] = [t.task_id for t in job.tasks.values() if t.worker_id is not None]
        return Change(job, end(job, JobStatus.CANCELLED, clock_now(), Effects(), "Cancelled by client"))

    cancelled = await services.update(job_id, change, None)
    if cancelled is None:
        raise JobNotFound(job_id)
    await services.tell_workers_to_cancel(job_id, withdrawn)
    if cancelled.child is not None:
        with contextlib.suppress(JobNotFound, JobStateConflict):
            await cancel(services, cancelled.child.job_id, None)
    return cancelled


async def approve(services: Services, job_id: str, client_id: str, decision: str) -> None:
    def change(job: Job) -> Change[bool]:
        if job.client_id != client_id:
            raise JobNotFound(job_id)
        if job.status != JobStatus.WAITING_FOR_HUMAN or job.human is None:
            raise JobStateConflict(f"Job {job_id} is {job.status.value}, not waiting for approval")
        target = job.human.transitions.get(decision)
        if target is None:
            allowed = ", ".join(sorted(job.human.transitions))
            raise InvalidRequest(f"Unknown decision '{decision}'; expected one of: {allowed}")
        job.human = None
        job.state_history["approval_decision"] = decision
        return Change(True, go_to(job, target, clock_now(), Effects()))

    if await services.update(job_id, change, False) is False:
        raise JobNotFound(job_id)
