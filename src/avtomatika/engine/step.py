"""One executor step: run the current state's handler and turn its action into a transition."""

import logging
from typing import NamedTuple

from avtomatika.blueprints.actions import (
    Action,
    ActionFactory,
    AwaitHuman,
    DispatchParallel,
    DispatchTask,
    GoTo,
    RunBlueprint,
)
from avtomatika.blueprints.blueprint import Blueprint, HandlerEntry
from avtomatika.blueprints.job_context import ClientConfig, JobContext
from avtomatika.core.clock import now as clock_now
from avtomatika.core.effects import Effects
from avtomatika.core.records import ChildWait, HumanWait, Job, TaskSpec
from avtomatika.core.transitions import add_tasks, end, go_to, record_progress, retry_delay
from avtomatika.engine.jobs import new_job
from avtomatika.engine.notify import JobEvent
from avtomatika.engine.placement import place_tasks
from avtomatika.engine.services import Services
from avtomatika.errors import ActionError, BlueprintError
from avtomatika.protocol.constants import TERMINAL_STATUSES, JobStatus

logger = logging.getLogger(__name__)


def _context(job: Job, bp: Blueprint, actions: ActionFactory) -> JobContext:
    return JobContext(
        job_id=job.id,
        current_state=job.current_state,
        initial_data=job.initial_data,
        state_history=job.state_history,
        client=ClientConfig(token=job.client_id, plan="default", params={}),
        actions=actions,
        data_stores=bp.data_stores_namespace,
        tracing_context={},
        aggregation_results=job.aggregation_results,
        webhook_url=job.webhook_url,
        task_files=None,
    )


class StepOutcome(NamedTuple):
    """What to commit at the version the job was read at, and the events its handler emitted
    (announced only once the commit is stored; a failed attempt emits none)."""

    job: Job
    effects: Effects
    events: list[JobEvent]


async def run_handler_step(services: Services, job: Job, lease_token: str) -> StepOutcome:
    now = clock_now()
    config = services.config
    effects = Effects(release_lease=lease_token)
    bp = services.blueprints.get(job.blueprint_name)
    if bp is None:
        end(job, JobStatus.QUARANTINED, now, effects, f"Blueprint '{job.blueprint_name}' is not registered")
        return StepOutcome(job, effects, [])
    job.transition_count += 1
    if job.transition_count > config.MAX_TRANSITIONS_PER_JOB:
        end(
            job,
            JobStatus.FAILED,
            now,
            effects,
            f"Job exceeded MAX_TRANSITIONS_PER_JOB={config.MAX_TRANSITIONS_PER_JOB} (a loop?)",
        )
        return StepOutcome(job, effects, [])
    actions = ActionFactory(job.id, job.dispatch_timeout, job.result_timeout, state_exists=bp.has_state)
    aggregate = job.aggregation_target == job.current_state
    entry: HandlerEntry | None = None
    try:
        context = _context(job, bp, actions)
        entry = bp.select(job.current_state, context, aggregate=aggregate)
        await entry.invoke(context)
        _check_action(services, bp, entry, actions.action)
    except (BlueprintError, ActionError) as exc:
        # The blueprint is wrong: a retry would make the same mistake, so the job fails now.
        message = str(exc) if isinstance(exc, BlueprintError) else f"{_where(bp, job, entry)}: {exc}"
        logger.error("Job %s failed: %s", job.id, message, exc_info=exc)
        return await _failed_attempt(services, job, exc, lease_token, message)
    except Exception as exc:
        # Nothing the failed attempt changed is kept: the retry starts from the stored job.
        return await _failed_attempt(services, job, exc, lease_token)
    if aggregate:
        job.aggregation_target = None
    # Storage errors from here on are not the handler's fault and spend none of its retries:
    # they propagate, and the step runs again when its lease expires.
    now = clock_now()
    events = _blueprint_events(bp, job, actions, now)
    await _apply_action(services, job, actions.action, now, effects)
    return StepOutcome(job, effects, events)


def _blueprint_events(bp: Blueprint, job: Job, actions: ActionFactory, now: float) -> list[JobEvent]:
    """The handler's ``send_event`` calls: a ``progress`` event updates the job in this very
    commit; every event is announced like a worker's once the commit is stored."""
    events = []
    for sent in actions.pending_events:
        if sent["event_type"] == "progress":
            record_progress(job, sent["payload"], now)
        events.append(
            JobEvent(
                f"blueprint:{bp.name}",
                sent["event_type"],
                sent["payload"],
                sent["security"],
                sent["metadata"],
            )
        )
    return events


def _where(bp: Blueprint, job: Job, entry: HandlerEntry | None) -> str:
    where = f"Blueprint '{bp.name}', state '{job.current_state}'"
    if entry is None:
        return where
    return f"{where}: handler '{entry.plan.handler}' ({entry.plan.location})"


async def _failed_attempt(
    services: Services, job: Job, exc: Exception, lease_token: str, mistake: str | None = None
) -> StepOutcome:
    """Commit the failure on the stored job; ``mistake`` (a blueprint error) fails it at once."""
    effects = Effects(release_lease=lease_token)
    stored = await services.storage.get_job(job.id)
    if stored is None or stored.version != job.version:
        return StepOutcome(job, effects, [])
    stored.transition_count = job.transition_count
    if mistake is None:
        _handler_failed(services, stored, exc, clock_now(), effects)
    else:
        end(stored, JobStatus.FAILED, clock_now(), effects, mistake)
    return StepOutcome(stored, effects, [])


def _handler_failed(services: Services, job: Job, exc: Exception, now: float, effects: Effects) -> None:
    """A raising handler is retried with backoff; after JOB_MAX_RETRIES the job is quarantined."""
    message = f"Handler for state '{job.current_state}' failed: {type(exc).__name__}: {exc}"
    job.error_message = message
    if job.retry_count < services.config.JOB_MAX_RETRIES:
        logger.warning("Job %s (retry %d): %s", job.id, job.retry_count + 1, message, exc_info=exc)
        job.retry_count += 1
        job.status = JobStatus.AWAITING_RETRY
        job.updated_at = now
        effects.run_at = now + retry_delay(services.config.retry_policy, job.retry_count)
        return
    logger.error("Job %s quarantined: %s", job.id, message, exc_info=exc)
    end(job, JobStatus.QUARANTINED, now, effects, message)


def _check_action(services: Services, bp: Blueprint, entry: HandlerEntry, action: Action | None) -> None:
    """What only the finished call shows: no action in a non-end state, an unknown child
    blueprint. Target states were checked when the handler called the action method."""
    if action is None and not bp.is_end(entry.state):
        raise BlueprintError(
            f"Blueprint '{bp.name}', state '{entry.state}': handler '{entry.plan.handler}' "
            f"({entry.plan.location}) chose no action, and '{entry.state}' is not an end state "
            "(call one of the actions, or register the state with is_end=True)"
        )
    if isinstance(action, RunBlueprint) and action.blueprint_name not in services.blueprints:
        raise BlueprintError(
            f"Blueprint '{bp.name}', state '{entry.state}': handler '{entry.plan.handler}' "
            f"({entry.plan.location}) runs child blueprint '{action.blueprint_name}', "
            "which is not registered"
        )


async def _apply_action(
    services: Services, job: Job, action: Action | None, now: float, effects: Effects
) -> None:
    if action is None:
        end(job, JobStatus.FINISHED, now, effects)
    elif isinstance(action, GoTo):
        go_to(job, action.state, now, effects)
    elif isinstance(action, DispatchTask):
        job.status = JobStatus.WAITING_FOR_WORKER
        _dispatch(job, [action.spec], now)
        await place_tasks(job, services.dispatcher, services.config.NO_WORKER_WAIT_SECONDS, now, effects)
    elif isinstance(action, DispatchParallel):
        job.status = JobStatus.WAITING_FOR_PARALLEL_TASKS
        job.aggregation_target = action.aggregate_into
        job.aggregation_results = {}
        _dispatch(job, action.tasks, now)
        await place_tasks(job, services.dispatcher, services.config.NO_WORKER_WAIT_SECONDS, now, effects)
    elif isinstance(action, AwaitHuman):
        job.status = JobStatus.WAITING_FOR_HUMAN
        job.human = HumanWait(
            transitions=action.transitions, integration=action.integration, message=action.message
        )
        job.updated_at = now
    else:
        _start_child(services, job, action, now, effects)


def _dispatch(job: Job, specs: list[TaskSpec], now: float) -> None:
    job.tasks = {}
    job.updated_at = now
    add_tasks(job, specs, now)


def _start_child(services: Services, job: Job, action: RunBlueprint, now: float, effects: Effects) -> None:
    child_bp = services.blueprints[action.blueprint_name]
    child = new_job(
        child_bp,
        job.client_id,
        action.initial_data,
        dispatch_timeout=action.dispatch_timeout,
        result_timeout=action.result_timeout,
        security=job.security,
        metadata=job.metadata,
        parent_job_id=job.id,
    )
    effects.create_jobs.append(child)
    job.child = ChildWait(job_id=child.id, transitions=action.transitions)
    job.status = JobStatus.WAITING_FOR_SUB_JOB
    job.updated_at = now


async def run_resume_step(services: Services, job: Job, effects: Effects) -> None:
    """A parent waiting for a child: move on once the child has ended (its end wakes us)."""
    if job.child is None:
        return
    child = await services.storage.get_job(job.child.job_id)
    now = clock_now()
    if child is not None and child.status not in TERMINAL_STATUSES:
        return
    outcome = "success" if child is not None and child.status == JobStatus.FINISHED else "failure"
    job.state_history[f"sub_job_{job.child.job_id}_result"] = {
        "outcome": outcome,
        "status": child.status.value if child else "missing",
        "final_state": child.current_state if child else None,
        "error_message": child.error_message if child else "child job not found",
        "state_history": child.state_history if child else {},
    }
    target = job.child.transitions.get(outcome)
    job.child = None
    if target is None:
        end(
            job,
            JobStatus.FAILED,
            now,
            effects,
            f"Child job ended with outcome '{outcome}' and no transition for it",
        )
        return
    go_to(job, target, now, effects)
