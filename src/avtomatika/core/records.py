"""Durable records: what storage keeps for jobs, tasks and workers.

These are the domain's data, independent of any backend. Backends serialise them with
msgspec (JSON or MessagePack) and must round-trip them exactly.
"""

from enum import StrEnum
from typing import Any, Final

import msgspec

from avtomatika.protocol.constants import JobStatus
from avtomatika.protocol.models import (
    InstalledArtifact,
    Resources,
    ResourcesUsage,
    SkillInfo,
    TaskPayload,
    WorkerCapabilities,
)

JSONObject = dict[str, Any]


DISPATCH_STRATEGIES: Final = frozenset(
    {"default", "round_robin", "least_connections", "cheapest", "best_value", "overflow"}
)
"""How a task may ask to be placed (``TaskSpec.dispatch_strategy``); the dispatcher has one
rule for each."""


class Record(msgspec.Struct, kw_only=True):
    """Base of every stored record."""


class TaskSpec(Record):
    """What a handler asked a worker to do; kept so a retry re-dispatches it unchanged."""

    type: str
    params: JSONObject = msgspec.field(default_factory=dict)
    transitions: dict[str, str] = msgspec.field(default_factory=dict)
    event_transitions: dict[str, str] = msgspec.field(default_factory=dict)
    dispatch_strategy: str = "default"
    resource_requirements: JSONObject | None = None
    timeout_seconds: float | None = None
    dispatch_timeout_seconds: float | None = None
    result_timeout_seconds: float | None = None
    max_cost: float | None = None
    priority: float = 0.0


class ActiveTask(Record):
    """A task the job is waiting for. ``worker_id`` is None until it is placed on a worker's queue."""

    task_id: str
    spec: TaskSpec
    created_at: float
    attempt: int = 1
    worker_id: str | None = None
    dispatched_at: float | None = None


class TaskOutcome(Record):
    """A worker result the job has applied, kept for the job status document."""

    task_id: str
    worker_id: str | None
    state: str
    task_type: str
    status: str
    data: Any = None
    error: JSONObject | None = None
    received_at: float = 0.0


class HumanWait(Record):
    transitions: dict[str, str]
    integration: str | None = None
    message: str | None = None


class ChildWait(Record):
    job_id: str
    transitions: dict[str, str]


class Job(Record):
    """One job. ``version`` increases by one on every committed change (compare-and-set)."""

    id: str
    blueprint_name: str
    current_state: str
    status: JobStatus
    client_id: str
    created_at: float
    updated_at: float
    version: int = 0
    initial_data: Any = msgspec.field(default_factory=dict)
    state_history: JSONObject = msgspec.field(default_factory=dict)
    webhook_url: str | None = None
    dispatch_timeout: float | None = None
    result_timeout: float | None = None
    security: JSONObject | None = None
    metadata: JSONObject | None = None
    retry_count: int = 0
    transition_count: int = 0
    error_message: str | None = None
    tasks: dict[str, ActiveTask] = msgspec.field(default_factory=dict)
    aggregation_target: str | None = None
    aggregation_results: dict[str, JSONObject] = msgspec.field(default_factory=dict)
    human: HumanWait | None = None
    child: ChildWait | None = None
    parent_job_id: str | None = None
    results: list[TaskOutcome] = msgspec.field(default_factory=list)
    progress: float | None = None
    progress_message: str | None = None
    finished_at: float | None = None
    path: list[str] = msgspec.field(default_factory=list)
    """Every state the job has entered, in order: its audit trail through the blueprint."""

    def applied(self, task_id: str) -> bool:
        """Whether a result for ``task_id`` was already applied (duplicate detection)."""
        return task_id in self.aggregation_results or any(r.task_id == task_id for r in self.results)


class TaskState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    CANCELLED = "cancelled"


class TaskRecord(Record):
    """A task placed on a worker: its queue entry, in-flight state and deadlines (epoch seconds)."""

    task_id: str
    job_id: str
    worker_id: str
    skill: str
    payload: TaskPayload
    priority: float = 0.0
    state: TaskState = TaskState.QUEUED
    enqueued_at: float = 0.0
    picked_up_at: float | None = None
    dispatch_deadline: float | None = None
    result_deadline: float | None = None
    execution_timeout: float = 300.0
    requirements: JSONObject | None = None
    max_cost: float | None = None
    """The task's ``max_cost``, kept (like ``requirements``) so that a steal checks the thief."""
    poll_check_at: float | None = None
    """When the watcher checks that the worker still takes tasks, if the task is still queued."""

    def queued_deadline(self) -> float | None:
        """While queued: an explicit dispatch or result deadline, or the poll check."""
        candidates = [
            d for d in (self.dispatch_deadline, self.result_deadline, self.poll_check_at) if d is not None
        ]
        return min(candidates) if candidates else None

    def expired_while_queued(self, now: float) -> bool:
        """An explicit dispatch or result deadline has passed (not just the poll check)."""
        return any(d is not None and d <= now for d in (self.dispatch_deadline, self.result_deadline))

    def running_deadline(self, picked_up_at: float) -> float:
        limit = picked_up_at + self.execution_timeout
        return limit if self.result_deadline is None else min(limit, self.result_deadline)


class WorkerRecord(Record):
    """A registered worker. ``expires_at`` is refreshed by every heartbeat."""

    worker_id: str
    worker_type: str = "generic"
    skills: list[SkillInfo] = msgspec.field(default_factory=list)
    resources: Resources = msgspec.field(default_factory=Resources)
    installed_software: dict[str, str] = msgspec.field(default_factory=dict)
    installed_artifacts: list[InstalledArtifact] = msgspec.field(default_factory=list)
    capabilities: WorkerCapabilities = msgspec.field(default_factory=WorkerCapabilities)
    skills_hash: str | None = None
    status: str = "idle"
    usage: ResourcesUsage | None = None
    hot_cache: list[str] = msgspec.field(default_factory=list)
    hot_skills: list[str] = msgspec.field(default_factory=list)
    reputation: float = 1.0
    registered_at: float = 0.0
    last_heartbeat: float = 0.0
    last_poll: float = 0.0
    """When the worker last asked for a task (0: never): heartbeats alone do not prove that it
    still takes tasks."""
    expires_at: float = 0.0
    metadata: JSONObject | None = None

    def skill_names(self) -> set[str]:
        """Every name a task type may use to reach this worker: skill names and skill types."""
        names = {s.name for s in self.skills}
        names.update(s.type for s in self.skills if s.type)
        return names

    @property
    def websockets(self) -> bool:
        extra = self.capabilities.extra or {}
        return bool(extra.get("websockets"))


class HeartbeatUpdate(Record):
    """What a heartbeat may change on a worker record (never reputation or identity)."""

    status: str
    expires_at: float
    last_heartbeat: float
    usage: ResourcesUsage | None = None
    hot_cache: list[str] | None = None
    hot_skills: list[str] | None = None
    skills: list[SkillInfo] | None = None
    skills_hash: str | None = None
