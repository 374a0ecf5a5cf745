"""Worker lifecycle on the orchestrator side: registration, heartbeats, task delivery, events."""

import logging
import random

from avtomatika.core.clock import now as clock_now
from avtomatika.core.codec import to_builtins
from avtomatika.core.effects import Effects
from avtomatika.core.records import HeartbeatUpdate, Job, TaskRecord, TaskSpec, TaskState, WorkerRecord
from avtomatika.core.transitions import go_to, live_task, record_progress, redispatch
from avtomatika.engine.notify import JobEvent
from avtomatika.engine.services import Change, Services
from avtomatika.errors import UnknownWorker
from avtomatika.protocol.constants import JobStatus
from avtomatika.protocol.models import Heartbeat, HeartbeatResponse, WorkerEventPayload, WorkerRegistration

logger = logging.getLogger(__name__)

JITTER_MS = 2000
"""Largest heartbeat jitter told to a worker; never more than a tenth of the health-check
interval, so a jittered heartbeat still lands well inside the worker's TTL."""
HAND_BACK_LIMIT = 10_000
STEAL_SAMPLE = 10


async def register(services: Services, reg: WorkerRegistration) -> WorkerRecord:
    now = clock_now()
    record = WorkerRecord(
        worker_id=reg.worker_id,
        worker_type=reg.worker_type or "generic",
        skills=list(reg.supported_skills or []),
        installed_software=dict(reg.installed_software or {}),
        installed_artifacts=list(reg.installed_artifacts or []),
        skills_hash=reg.skills_hash,
        registered_at=now,
        last_heartbeat=now,
        expires_at=now + services.config.worker_ttl,
        metadata=reg.metadata,
    )
    if reg.resources is not None:
        record.resources = reg.resources
    if reg.capabilities is not None:
        record.capabilities = reg.capabilities
    stored = await services.storage.register_worker(record)
    services.dispatcher.forget(reg.worker_id)
    logger.info("Worker %s registered with skills %s", reg.worker_id, sorted(stored.skill_names()))
    return stored


async def heartbeat(services: Services, worker_id: str, hb: Heartbeat | None) -> HeartbeatResponse:
    now = clock_now()
    storage = services.storage
    if hb is None:
        existing = await storage.get_worker(worker_id)
        if existing is None:
            raise UnknownWorker(worker_id)
        update = HeartbeatUpdate(
            status=existing.status, expires_at=now + services.config.worker_ttl, last_heartbeat=now
        )
    else:
        update = HeartbeatUpdate(
            status=hb.status,
            expires_at=now + services.config.worker_ttl,
            last_heartbeat=now,
            usage=hb.usage,
            hot_cache=hb.hot_cache,
            hot_skills=[s.name for s in hb.hot_skills] if hb.hot_skills is not None else None,
            skills=hb.supported_skills,
            skills_hash=hb.skills_hash if hb.supported_skills is not None else None,
        )
    stored = await storage.heartbeat_worker(worker_id, update)
    if stored is None:
        raise UnknownWorker(worker_id)
    if hb is not None and (hb.supported_skills is not None or hb.status == "offline"):
        services.dispatcher.forget(worker_id)
    if hb is not None and hb.status == "offline":
        await _hand_back_queued(services, worker_id)
    jitter = min(JITTER_MS, int(services.config.WORKER_HEALTH_CHECK_INTERVAL_SECONDS * 100))
    response = HeartbeatResponse(status="ok", next_heartbeat_jitter_ms=random.randint(-jitter, jitter))
    if hb is not None and hb.skills_hash and not stored.skills and hb.supported_skills is None:
        response.require_full_sync = True
    if hb is not None and hb.current_tasks:
        response.cancel_task_ids = await _tasks_to_cancel(services, worker_id, hb.current_tasks)
    return response


async def _hand_back_queued(services: Services, worker_id: str) -> None:
    """A worker signing off will not poll again: its queued tasks go to other workers now
    rather than when its record expires (tasks it is still running stay with it)."""
    for record in await services.storage.peek_tasks(worker_id, HAND_BACK_LIMIT):

        def change(job: Job, task_id: str = record.task_id) -> Change[None]:
            active = live_task(job, task_id)
            if active is None:
                return Change(None)
            return Change(None, redispatch(job, active, clock_now(), Effects(drop_tasks=[task_id])))

        await services.update(record.job_id, change, None)


async def _tasks_to_cancel(services: Services, worker_id: str, task_ids: list[str]) -> list[str]:
    """Tasks a worker runs that the orchestrator has positively taken away from it: cancelled,
    or now owned by another worker. A task without a record is never named: its result was
    applied (the record is dropped then), so a heartbeat racing that result must not make the
    published SDK cancel a finished task (which leaks one of its slots for good)."""
    records = await services.storage.get_tasks(task_ids)
    return [
        task_id
        for task_id, rec in zip(task_ids, records, strict=True)
        if rec is not None and (rec.state == TaskState.CANCELLED or rec.worker_id != worker_id)
    ]


async def next_task(services: Services, worker_id: str, timeout: float) -> TaskRecord | None:
    """Long-poll: the worker's own queue first, then a task stolen from a busier peer, then a
    wait that a stopping instance ends at once (only the wait: a steal is never interrupted)."""
    if services.polls.closed:
        return None
    storage = services.storage
    record = await storage.poll_task(worker_id, 0)
    if record is None and services.config.WORK_STEALING_ENABLED:
        record = await _steal(services, worker_id)
    if record is None:
        record = await services.polls.hold(storage.poll_task(worker_id, timeout))
    return record


async def _steal(services: Services, thief_id: str) -> TaskRecord | None:
    storage = services.storage
    dispatcher = services.dispatcher
    thief = await dispatcher.worker(thief_id)
    if thief is None:
        return None
    now = clock_now()
    for skill in sorted(thief.skill_names()):
        peers = [w for w in await dispatcher.candidates(skill) if w.worker_id != thief_id]
        if not peers:
            continue
        loads = await storage.worker_loads([w.worker_id for w in peers])
        backlog = [
            (load.total - w.resources.max_concurrent_tasks, w) for w, load in zip(peers, loads, strict=True)
        ]
        backlog = [b for b in backlog if b[0] > 0]
        if not backlog:
            continue
        victim = max(backlog, key=lambda b: b[0])[1]
        for candidate in await storage.peek_tasks(victim.worker_id, STEAL_SAMPLE):
            spec = TaskSpec(
                type=candidate.skill,
                resource_requirements=candidate.requirements,
                max_cost=candidate.max_cost,
            )
            if candidate.skill in thief.skill_names() and dispatcher.eligible(thief, spec, now):
                stolen = await storage.steal_task(candidate.task_id, victim.worker_id, thief_id)
                if stolen is not None:
                    await _hand_over(services, stolen, victim.worker_id)
                    return stolen
    return None


async def _hand_over(services: Services, stolen: TaskRecord, victim_id: str) -> None:
    """The job learns the task's new owner before the thief hears of it, so the thief's events
    and results are the ones the job accepts, and the victim's are refused. If this instance
    dies in between, the thief never got the task: its running deadline puts it back."""

    def change(job: Job) -> Change[None]:
        active = live_task(job, stolen.task_id)
        if active is None or active.worker_id != victim_id:
            return Change(None)
        active.worker_id = stolen.worker_id
        return Change(None, Effects())

    await services.update(stolen.job_id, change, None)


async def apply_event(services: Services, worker_id: str, event: WorkerEventPayload) -> None:
    """Progress events update the job; mapped event types move a waiting job. An accepted
    event is announced (webhook, ``on_worker_event``) once its change is stored."""
    announced = JobEvent(
        worker_id,
        event.event_type,
        event.payload,
        to_builtins(event.security) if event.security is not None else None,
        event.metadata,
    )
    job_id = event.target_job_id
    if job_id is None:
        services.notify.event(None, announced)
        return

    def change(job: Job) -> Change[Job | None]:
        now = clock_now()
        # A worker may only speak about tasks it was given (isolation, design.md §3.7).
        if not any(t.worker_id == worker_id for t in job.tasks.values()):
            return Change(None)
        if event.event_type == "progress":
            record_progress(job, event.payload, now)
            return Change(job, Effects())
        if job.status != JobStatus.WAITING_FOR_WORKER:
            return Change(job)
        for active in job.tasks.values():
            target = active.spec.event_transitions.get(event.event_type)
            if target is not None and (event.target_task_id in (None, active.task_id)):
                job.state_history.update(event.payload)
                effects = Effects(cancel_tasks=list(job.tasks))
                job.tasks = {}
                return Change(job, go_to(job, target, now, effects))
        return Change(job)

    job = await services.update(job_id, change, None)
    if job is not None:
        services.notify.event(job, announced)
